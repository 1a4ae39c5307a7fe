import contextlib
import io
import math
import random
import unittest

from tests.helpers import NAMES, assert_close, efficiency, microgpt


def tiny_model(seed=0, n_layer=2, n_embd=8):
    config = microgpt.Config(n_embd=n_embd, n_head=2, n_layer=n_layer, block_size=4)
    tokenizer = microgpt.Tokenizer('abcde')
    params = microgpt.init_params(config, tokenizer.vocab_size, random.Random(seed))
    return config, tokenizer, params


class TestModel(unittest.TestCase):
    def test_default_config_on_names_has_4192_parameters_and_27_tokens(self):
        docs = microgpt.load_docs(NAMES)
        tokenizer = microgpt.Tokenizer.from_docs(docs)
        self.assertEqual(tokenizer.vocab_size, 27)
        params = microgpt.init_params(microgpt.Config(), tokenizer.vocab_size, random.Random(0))
        self.assertEqual(len(microgpt.flatten(params)), 4192)
        self.assertEqual(sorted(params), sorted(['wte', 'wpe', 'lm_head', 'layer0.attn_wq',
                         'layer0.attn_wk', 'layer0.attn_wv', 'layer0.attn_wo', 'layer0.mlp_fc1',
                         'layer0.mlp_fc2']))
        self.assertEqual((len(params['layer0.mlp_fc1']), len(params['layer0.mlp_fc1'][0])),
                         (64, 16))  # [out][in]

    def test_every_parameter_gradient_matches_finite_differences(self):  # Part 2, 2 layers
        with efficiency():
            self.check_every_parameter_gradient(n_layer=2)

    def test_every_parameter_gradient_of_part_1_matches_finite_differences(self):
        # One layer, as Part 1 is slow; test_efficiency proves Part 1 = Part 2 on two.
        self.check_every_parameter_gradient(n_layer=1)

    def check_every_parameter_gradient(self, n_layer):
        config, tokenizer, params = tiny_model(n_layer=n_layer, n_embd=4)
        doc = 'abcde'  # longer than block_size: the truncation is differentiated too

        def loss_value():
            return microgpt.document_loss(doc, tokenizer, params, config).data
        microgpt.document_loss(doc, tokenizer, params, config).backward()
        flat = microgpt.flatten(params)
        self.assertEqual(len(flat), 6 * 4 + 4 * 4 + 6 * 4 + n_layer * (4 * 16 + 2 * 4 * 16))
        h = 1e-6
        checked_nonzero = 0
        for i, p in enumerate(flat):
            original = p.data
            p.data = original + h
            up = loss_value()
            p.data = original - h
            down = loss_value()
            p.data = original
            assert_close(self, p.grad, (up - down) / (2 * h), rel=1e-5, floor=1e-8,
                         what=f'parameter {i}')
            checked_nonzero += abs(p.grad) > 1e-6
        self.assertGreater(checked_nonzero, len(flat) // 2)  # the check was not vacuous

    def test_logits_at_a_position_do_not_depend_on_later_tokens(self):
        config, tokenizer, params = tiny_model(seed=1)

        def logits_per_position(tokens):
            keys = [[] for _ in range(config.n_layer)]
            values = [[] for _ in range(config.n_layer)]
            return [[v.data for v in microgpt.gpt(t, pos, keys, values, params, config)]
                    for pos, t in enumerate(tokens)]
        first = logits_per_position([5, 0, 1, 2])
        second = logits_per_position([5, 0, 1, 4])
        self.assertEqual(first[:3], second[:3])
        self.assertNotEqual(first[3], second[3])  # and the model does read its input

    def test_logits_follow_the_documented_math_computed_with_plain_numbers(self):
        # The model of the core issue, written out with floats and a ReLU on every unit: Part 1,
        # and Part 2's fused ops and skipped (zero) ReLU units, must give the same logits.
        for on in (False, True):
            with self.subTest(efficiency=on), efficiency(on):
                self.check_logits_against_plain_numbers()

    def check_logits_against_plain_numbers(self):
        config, tokenizer, params = tiny_model(seed=2)
        w = {name: [[p.data for p in row] for row in matrix] for name, matrix in params.items()}

        def matvec(name, x):
            return [sum(a * b for a, b in zip(row, x)) for row in w[name]]

        def norm(x):
            return [a / math.sqrt(sum(b * b for b in x) / len(x) + 1e-5) for a in x]
        head_dim = config.n_embd // config.n_head
        tokens = [5, 0, 3, 3]
        keys, values = [[] for _ in range(config.n_layer)], [[] for _ in range(config.n_layer)]
        model_keys, model_values = [[] for _ in keys], [[] for _ in values]
        for pos, token in enumerate(tokens):
            x = norm([a + b for a, b in zip(w['wte'][token], w['wpe'][pos])])
            for i in range(config.n_layer):
                layer = f'layer{i}.'
                h = norm(x)
                q = matvec(layer + 'attn_wq', h)
                keys[i].append(matvec(layer + 'attn_wk', h))
                values[i].append(matvec(layer + 'attn_wv', h))
                attended = []
                for head in range(config.n_head):
                    lo, hi = head * head_dim, (head + 1) * head_dim
                    scores = [sum(a * b for a, b in zip(q[lo:hi], k[lo:hi])) / math.sqrt(head_dim)
                              for k in keys[i]]
                    exps = [math.exp(s - max(scores)) for s in scores]
                    probs = [e / sum(exps) for e in exps]
                    attended += [sum(p * v[d] for p, v in zip(probs, values[i]))
                                 for d in range(lo, hi)]
                x = [a + b for a, b in zip(x, matvec(layer + 'attn_wo', attended))]
                hidden = [max(0.0, a) for a in matvec(layer + 'mlp_fc1', norm(x))]
                self.assertIn(0.0, hidden)  # some units are off, so the skip is exercised
                x = [a + b for a, b in zip(x, matvec(layer + 'mlp_fc2', hidden))]
            expected = matvec('lm_head', x)
            logits = microgpt.gpt(token, pos, model_keys, model_values, params, config)
            for got, want in zip(logits, expected):
                self.assertAlmostEqual(got.data, want, places=12)

    def test_the_tools_size_check_counts_the_parameters_that_init_params_builds(self):
        for sizes in ({}, {'n_embd': 8, 'n_head': 2, 'n_layer': 3, 'block_size': 5}):
            config = microgpt.Config(**sizes)
            n_params = len(microgpt.flatten(microgpt.init_params(config, 11, random.Random(0))))
            limit = microgpt.MAX_PARAMS
            try:
                microgpt.MAX_PARAMS = n_params
                microgpt.check_size(config, 11)  # exactly at the limit: passes
                microgpt.MAX_PARAMS = n_params - 1
                with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
                    microgpt.check_size(config, 11)
            finally:
                microgpt.MAX_PARAMS = limit

    def test_rmsnorm_gives_unit_root_mean_square(self):
        for rmsnorm in (microgpt.rmsnorm, microgpt.rmsnorm_fused):
            out = rmsnorm([microgpt.Value(x) for x in (3.0, -4.0, 12.0)])
            self.assertAlmostEqual(math.sqrt(sum(v.data ** 2 for v in out) / 3), 1.0, places=5)


if __name__ == '__main__':
    unittest.main()
