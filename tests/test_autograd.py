import math
import random
import unittest

from tests.helpers import assert_close, microgpt, numerical_grad

Value = microgpt.Value


class TestValueOps(unittest.TestCase):
    def check_unary(self, name, f, points):
        for x in points:
            v = Value(x)
            out = f(v)
            out.backward()
            self.assertAlmostEqual(out.data, f(x) if not isinstance(f(x), Value) else f(x).data)
            assert_close(self, v.grad, numerical_grad(lambda t: f(Value(t)).data, x),
                         what=f'{name} at {x}')

    def check_binary(self, name, f, pairs):
        for a, b in pairs:
            va, vb = Value(a), Value(b)
            f(va, vb).backward()
            assert_close(self, va.grad, numerical_grad(lambda t: f(Value(t), Value(b)).data, a),
                         what=f'd/da {name}({a}, {b})')
            assert_close(self, vb.grad, numerical_grad(lambda t: f(Value(a), Value(t)).data, b),
                         what=f'd/db {name}({a}, {b})')

    def test_binary_ops_match_finite_differences(self):
        pairs = [(1.5, -2.0), (-0.3, 0.7), (3.0, 4.0)]
        self.check_binary('add', lambda a, b: a + b, pairs)
        self.check_binary('sub', lambda a, b: a - b, pairs)
        self.check_binary('mul', lambda a, b: a * b, pairs)
        self.check_binary('div', lambda a, b: a / b, pairs)
        self.check_binary('mixed', lambda a, b: (a * b + a / b - b) * a, pairs)

    def test_unary_ops_match_finite_differences(self):
        self.check_unary('pow 3', lambda v: v ** 3, [-1.5, 0.4, 2.0])
        self.check_unary('pow -0.5', lambda v: v ** -0.5, [0.3, 2.0])
        self.check_unary('neg', lambda v: -v, [-1.0, 2.5])
        self.check_unary('log', lambda v: v.log() if isinstance(v, Value) else math.log(v),
                         [0.2, 3.0])
        self.check_unary('exp', lambda v: v.exp() if isinstance(v, Value) else math.exp(v),
                         [-2.0, 0.5])
        self.check_unary('relu', lambda v: v.relu() if isinstance(v, Value) else max(v, 0.0),
                         [-1.3, 0.8])

    def test_plain_numbers_mix_with_values(self):
        self.check_unary('2 + v', lambda v: 2 + v, [1.0])
        self.check_unary('v + 2', lambda v: v + 2, [1.0])
        self.check_unary('v - 2', lambda v: v - 2, [1.0])
        self.check_unary('3 * v', lambda v: 3 * v, [1.0])
        self.check_unary('v * 3', lambda v: v * 3, [1.0])
        self.check_unary('v / 3', lambda v: v / 3, [1.5])
        self.check_unary('1 - v', lambda v: 1 - v, [1.0, -2.5])
        self.check_unary('2 / v', lambda v: 2 / v, [1.5, -0.5])
        self.assertEqual(sum([Value(1.0), Value(2.0)]).data, 3.0)  # sum() starts from 0

    def test_a_sigmoid_written_from_value_ops_matches_finite_differences(self):
        def sigmoid(v):  # the first other nonlinearity many learners try in mlp
            return 1 / (1 + (-v).exp()) if isinstance(v, Value) else 1 / (1 + math.exp(-v))
        self.check_unary('sigmoid', sigmoid, [-2.0, 0.0, 0.7])

    def test_a_value_used_twice_accumulates_both_paths(self):
        x = Value(3.0)
        (x * x + x).backward()  # d/dx (x^2 + x) = 2x + 1
        self.assertEqual(x.grad, 7.0)


class TestFusedOps(unittest.TestCase):
    """Part 2's fused nodes: their numbers and every local gradient against finite differences."""

    def check_against_finite_differences(self, f, data, what):
        """f maps a list of Values to a list of Values; checks d out_i / d in_j for all i, j."""
        outputs = len(f([Value(x) for x in data]))
        for i in range(outputs):
            inputs = [Value(x) for x in data]
            f(inputs)[i].backward()
            for j in range(len(data)):
                numeric = numerical_grad(
                    lambda t: f([Value(x) for x in data[:j] + [t] + data[j + 1:]])[i].data,
                    data[j])
                assert_close(self, inputs[j].grad, numeric, what=f'{what}: d out_{i}/d in_{j}')

    def test_linear_fused_matches_plain_linear_and_finite_differences(self):
        rng = random.Random(1)
        data = [rng.uniform(-1, 1) for _ in range(4 + 3 * 4)]

        def f(values, linear):
            return linear(values[:4], [values[4 + 4 * r:8 + 4 * r] for r in range(3)])
        self.check_against_finite_differences(lambda v: f(v, microgpt.linear_fused), data,
                                              'linear_fused')
        for fused, plain in zip(f([Value(x) for x in data], microgpt.linear_fused),
                                f([Value(x) for x in data], microgpt.linear)):
            self.assertAlmostEqual(fused.data, plain.data, places=14)

    def test_linear_fused_of_a_vector_with_itself_counts_both_factors(self):
        x = [Value(2.0), Value(-3.0)]
        microgpt.linear_fused(x, [x])[0].backward()  # d/dx_i sum x^2 = 2 x_i
        self.assertEqual([v.grad for v in x], [4.0, -6.0])

    def test_rmsnorm_fused_matches_finite_differences(self):
        self.check_against_finite_differences(microgpt.rmsnorm_fused, [0.3, -1.2, 2.0, 0.05],
                                              'rmsnorm_fused')

    def test_attention_fused_matches_finite_differences(self):
        rng = random.Random(2)
        head_dim, positions = 3, 4
        data = [rng.uniform(-2, 2) for _ in range(head_dim * (1 + 2 * positions))]

        def f(values):
            q = values[:head_dim]
            rest = values[head_dim:]
            keys = [rest[t * head_dim:(t + 1) * head_dim] for t in range(positions)]
            vals = [rest[(positions + t) * head_dim:(positions + t + 1) * head_dim]
                    for t in range(positions)]
            return microgpt.attention_fused(q, keys, vals)
        self.check_against_finite_differences(f, data, 'attention_fused')

    def test_cross_entropy_fused_matches_log_softmax_and_finite_differences(self):
        logits_data = [1.2, -0.4, 3.1, 0.0, 50.0]  # a large logit: must not overflow
        for target in (0, 2, 4):
            def f(data):
                top = max(data)
                return math.log(sum(math.exp(x - top) for x in data)) + top - data[target]
            self.assertAlmostEqual(
                microgpt.cross_entropy_fused([Value(x) for x in logits_data], target).data,
                f(logits_data))
            self.check_against_finite_differences(
                lambda v: [microgpt.cross_entropy_fused(v, target)], logits_data,
                f'cross_entropy_fused, target {target}')

    def test_mlp_relu_skip_matches_plain_mlp_in_numbers_and_gradients(self):
        rng = random.Random(3)
        data = [rng.uniform(-1, 1) for _ in range(4 + 8 * 4 + 4 * 8)]
        results = []
        for mlp in (microgpt.mlp_relu_skip, microgpt.mlp):
            values = [Value(x) for x in data]
            fc1 = [values[4 + 4 * r:8 + 4 * r] for r in range(8)]
            fc2 = [values[36 + 8 * r:44 + 8 * r] for r in range(4)]
            out = mlp(values[:4], fc1, fc2)
            sum(out).backward()
            results.append(([y.data for y in out], [v.grad for v in values]))
        for fused, plain in zip(results[0][0] + results[0][1], results[1][0] + results[1][1]):
            self.assertAlmostEqual(fused, plain, places=14)
        self.assertIn(0.0, results[1][1][36:])  # some units were off: the skip was exercised

    def test_softmax_sums_to_one_and_does_not_overflow(self):
        probs = microgpt.softmax([Value(x) for x in (0.5, -1.0, 2.0, 800.0)])
        self.assertAlmostEqual(sum(p.data for p in probs), 1.0)
        self.check_against_finite_differences(microgpt.softmax, [0.5, -1.0, 2.0, 60.0], 'softmax')


class TestBackward(unittest.TestCase):
    def test_100000_chained_additions_backpropagate_without_recursion_error(self):
        x = Value(1.0)
        total = x
        for _ in range(100_000):
            total = total + x
        total.backward()
        self.assertEqual(x.grad, 100_001.0)

    def test_values_made_before_or_after_the_loss_but_not_in_it_get_no_gradient(self):
        x = Value(2.0)
        unrelated = x * 5
        loss = x * x
        later = loss * 7  # made from the loss afterwards, so not part of it
        loss.backward()
        self.assertEqual(x.grad, 4.0)
        self.assertEqual((unrelated.grad, later.grad), (0.0, 0.0))

    def test_a_second_backward_from_an_inner_value_accumulates_as_micrograd_does(self):
        x = Value(2.0)
        y = x * x
        z = y + 1
        z.backward()
        self.assertEqual(x.grad, 4.0)
        y.backward()  # the graph is still there: d(y)/dx = 2x is added again
        self.assertEqual(x.grad, 8.0)

    def test_two_losses_sharing_only_inputs_backpropagate_one_after_the_other(self):
        x = Value(2.0)
        y = Value(5.0)
        product = x * y
        total = x + y
        product.backward()
        total.backward()
        self.assertEqual((x.grad, y.grad), (5.0 + 1.0, 2.0 + 1.0))

    def test_two_losses_from_one_forward_pass_backpropagate_through_their_sum(self):
        x = Value(2.0)
        hidden = x * x
        (hidden * 3 + hidden.exp()).backward()  # d/dx = 3 * 2x + e^(x^2) * 2x
        assert_close(self, x.grad, 12.0 + math.exp(4.0) * 4.0)

    def test_value_repr_shows_data_and_grad(self):
        x = Value(2.5)
        (x * 2).backward()
        self.assertEqual(repr(x), 'Value(data=2.5, grad=2.0)')


if __name__ == '__main__':
    unittest.main()
