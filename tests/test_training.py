import math
import random
import unittest

from tests.helpers import efficiency, microgpt, names_setup


class TestTraining(unittest.TestCase):
    def test_200_steps_on_names_start_near_ln_vocab_and_learn(self):
        docs, tokenizer, config, params = names_setup()
        with efficiency():
            losses = microgpt.train(docs, tokenizer, params, config, 200, 0.01)
        self.assertEqual(len(losses), 200)
        self.assertLess(abs(losses[0] - math.log(tokenizer.vocab_size)), 0.3)
        self.assertLess(sum(losses[-50:]) / 50, 2.8)

    def test_same_seed_gives_identical_losses_and_samples(self):
        runs = []
        for _ in range(2):
            docs, tokenizer, config, params = names_setup(seed=7)
            with efficiency():
                losses = microgpt.train(docs, tokenizer, params, config, 20, 0.01)
            rng = random.Random(7)
            runs.append((losses, [microgpt.sample(params, config, tokenizer, rng, 0.5)
                                  for _ in range(5)]))
        self.assertEqual(runs[0], runs[1])
        docs, tokenizer, config, params = names_setup(seed=8)
        with efficiency():
            self.assertNotEqual(microgpt.train(docs, tokenizer, params, config, 20, 0.01),
                                runs[0][0])

    def test_train_reports_each_step_as_it_goes_and_returns_the_losses_in_part_1_and_part_2(self):
        for on in (False, True):
            with self.subTest(efficiency=on), efficiency(on):
                docs, tokenizer, config, params = names_setup()
                reported = []
                losses = microgpt.train(docs, tokenizer, params, config, 3, 0.01,
                                        on_step=lambda step, loss: reported.append((step, loss)))
                self.assertEqual(reported, list(zip([1, 2, 3], losses)))
                self.assertLess(abs(losses[0] - math.log(tokenizer.vocab_size)), 0.3)

    def test_train_stopped_after_a_step_goes_on_from_adams_state_as_if_never_stopped(self):
        runs = []
        for stop_at in (None, 4):
            docs, tokenizer, config, params = names_setup(seed=9)
            n_params = len(microgpt.flatten(params))
            adam = {'step': 0, 'm': [0.0] * n_params, 'v': [0.0] * n_params}
            losses = []

            def on_step(step, loss):
                losses.append(loss)
                if step == stop_at:
                    raise KeyboardInterrupt
            with efficiency():
                try:
                    microgpt.train(docs, tokenizer, params, config, 10, 0.01, adam, on_step)
                except KeyboardInterrupt:
                    self.assertEqual(adam['step'], 4)
                    microgpt.train(docs, tokenizer, params, config, 10, 0.01, adam, on_step)
            runs.append((losses, [p.data for p in microgpt.flatten(params)]))
        self.assertEqual(len(runs[0][0]), 10)
        self.assertEqual(runs[0], runs[1])

    def test_adam_moves_every_parameter_that_got_a_gradient_and_zeroes_the_gradients(self):
        docs, tokenizer, config, params = names_setup()
        before = [p.data for p in microgpt.flatten(params)]
        microgpt.train(['anna'], tokenizer, params, config, 1, 0.01)
        moved = sum(a != p.data for a, p in zip(before, microgpt.flatten(params)))
        self.assertGreater(moved, 3000)  # every weight but the unused wte rows and wpe positions
        self.assertTrue(all(p.grad == 0.0 for p in microgpt.flatten(params)))


class TestSampling(unittest.TestCase):
    def test_samples_stay_within_block_size_and_never_contain_bos(self):
        config = microgpt.Config(n_embd=8, n_head=2, block_size=6)
        tokenizer = microgpt.Tokenizer('ab')
        params = microgpt.init_params(config, tokenizer.vocab_size, random.Random(3))
        for row in params['lm_head']:  # uniform next-token odds: some samples hit the limit
            row[:] = [microgpt.Value(0.0) for _ in row]
        rng = random.Random(0)
        samples = [microgpt.sample(params, config, tokenizer, rng, 2.0) for _ in range(200)]
        self.assertTrue(all(len(s) <= config.block_size and set(s) <= {'a', 'b'}
                            for s in samples))
        self.assertIn(config.block_size, [len(s) for s in samples])

    def test_prompt_starts_every_sample(self):
        docs, tokenizer, config, params = names_setup()
        rng = random.Random(1)
        for _ in range(5):
            self.assertTrue(microgpt.sample(params, config, tokenizer, rng, 0.5, 'jo')
                            .startswith('jo'))

    def test_a_prompt_outside_the_vocabulary_is_a_clear_value_error(self):
        docs, tokenizer, config, params = names_setup()
        with self.assertRaisesRegex(ValueError, "'J' is not in the vocabulary"):
            microgpt.sample(params, config, tokenizer, random.Random(1), 0.5, 'Ja')


if __name__ == '__main__':
    unittest.main()
