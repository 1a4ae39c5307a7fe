"""Part 2 changes no math: the same losses and gradients as Part 1, and the same autograd rules."""
import gc
import random
import sys
import unittest

from tests.helpers import efficiency, microgpt, names_setup

TWO_LAYERS = microgpt.Config(n_embd=8, n_head=2, n_layer=2, block_size=8)


def losses_and_gradients(docs, on, attention=None):
    """Per-document losses and every parameter's gradient, with Part 2 on or off."""
    train_docs, tokenizer, config, params = names_setup(seed=5, config=TWO_LAYERS)
    results = []
    with efficiency(on):
        if attention:
            microgpt.attention = attention
        for doc in docs:
            loss = microgpt.document_loss(doc, tokenizer, params, config)
            loss.backward()
            results.append((loss.data, [p.grad for p in microgpt.flatten(params)]))
            for p in microgpt.flatten(params):
                p.grad = 0.0
    return results


class TestSameNumbers(unittest.TestCase):
    def assert_same(self, reference, fast):
        for (loss_a, grads_a), (loss_b, grads_b) in zip(reference, fast):
            self.assertLess(abs(loss_a - loss_b), 1e-9)
            for a, b in zip(grads_a, grads_b):
                self.assertLessEqual(abs(a - b), 1e-9 * max(abs(a), abs(b), 1e-6))
            self.assertGreater(sum(g != 0 for g in grads_a), len(grads_a) // 2)

    def test_part_1_and_part_2_give_the_same_losses_and_gradients_on_a_2_layer_model(self):
        docs = ['emma', 'olivia', 'bartholomew', 'x']  # one longer than block_size
        self.assert_same(losses_and_gradients(docs, False), losses_and_gradients(docs, True))

    def test_fused_attention_gives_the_losses_and_gradients_of_plain_attention(self):
        docs = ['sophia', 'jacksonville']
        plain = losses_and_gradients(docs, True, attention=microgpt.REFERENCE['attention'])
        self.assert_same(plain, losses_and_gradients(docs, True))

    def test_20_training_steps_give_the_same_losses(self):
        runs = []
        for on in (False, True):
            train_docs, tokenizer, config, params = names_setup(seed=3, config=TWO_LAYERS)
            with efficiency(on):
                runs.append(list(microgpt.train(train_docs, tokenizer, params, config, 20, 0.01)))
        self.assertEqual(len(runs[1]), 20)
        for a, b in zip(*runs):
            self.assertLess(abs(a - b), 1e-9)

    def test_evaluation_without_a_graph_gives_the_loss_bit_for_bit(self):
        train_docs, tokenizer, config, params = names_setup(seed=4, config=TWO_LAYERS)
        for doc in train_docs[:20]:
            with_graph = microgpt.document_loss(doc, tokenizer, params, config).data
            with microgpt.no_grad():
                without = microgpt.document_loss(doc, tokenizer, params, config)
            self.assertEqual(without.data, with_graph)
            self.assertEqual(without._children, ())

    def test_use_efficiency_swaps_every_lever_and_back(self):
        with efficiency(False):
            for name, function in microgpt.REFERENCE.items():
                self.assertIs(getattr(microgpt, name), function)
        for name, function in microgpt.LEVERS.items():
            self.assertIs(getattr(microgpt, name), function)


class TestSameAutogradRules(unittest.TestCase):
    def gradients(self, params):
        grads = [p.grad for p in microgpt.flatten(params)]
        for p in microgpt.flatten(params):
            p.grad = 0.0
        return grads

    def test_compute_loss_then_sample_then_backward_gives_the_loss_gradients(self):
        for on in (False, True):
            with self.subTest(efficiency=on), efficiency(on):
                train_docs, tokenizer, config, params = names_setup(seed=6)
                microgpt.document_loss('ava', tokenizer, params, config).backward()
                expected = self.gradients(params)
                loss = microgpt.document_loss('ava', tokenizer, params, config)
                microgpt.sample(params, config, tokenizer, random.Random(0), 0.5)
                loss.backward()
                self.assertEqual(self.gradients(params), expected)

    def assert_close_lists(self, got, expected):  # the graph search may add in another order
        self.assertEqual(len(got), len(expected))
        for a, b in zip(got, expected):
            self.assertLessEqual(abs(a - b), 1e-12 * max(abs(a), abs(b)) + 1e-15)

    def test_a_loss_made_before_another_still_backpropagates_correctly(self):
        train_docs, tokenizer, config, params = names_setup(seed=6)
        microgpt.document_loss('liam', tokenizer, params, config).backward()
        expected = self.gradients(params)
        first = microgpt.document_loss('liam', tokenizer, params, config)
        second = microgpt.document_loss('noah', tokenizer, params, config)  # now on the tape
        first.backward()  # not the tape's loss: searched as in Part 1
        self.assert_close_lists(self.gradients(params), expected)
        second.backward()
        with self.assertRaisesRegex(RuntimeError, 'already ran through this graph'):
            second.backward()
        with self.assertRaisesRegex(RuntimeError, 'already ran through this graph'):
            first.backward()

    def test_the_collector_is_paused_during_a_step_and_restored_after_and_on_ctrl_c(self):
        train_docs, tokenizer, config, params = names_setup()
        seen = []

        class Docs(list):
            def __getitem__(self, i):
                seen.append(gc.isenabled())
                if i == 2:
                    raise KeyboardInterrupt
                return super().__getitem__(i)
        self.assertTrue(gc.isenabled())
        steps = microgpt.train(Docs(train_docs), tokenizer, params, config, 5, 0.01)
        next(steps)
        self.assertTrue(gc.isenabled())  # on between steps
        with self.assertRaises(KeyboardInterrupt):
            list(steps)
        paused = sys.implementation.name == 'cpython'  # PyPy's collector is left alone
        self.assertEqual(seen, [not paused] * 3)
        self.assertTrue(gc.isenabled())


if __name__ == '__main__':
    unittest.main()
