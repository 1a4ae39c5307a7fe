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

    def test_numbers_work_on_either_side(self):
        self.check_unary('2 + v', lambda v: 2 + v, [1.0])
        self.check_unary('v + 2', lambda v: v + 2, [1.0])
        self.check_unary('2 - v', lambda v: 2 - v, [1.0])
        self.check_unary('v - 2', lambda v: v - 2, [1.0])
        self.check_unary('3 * v', lambda v: 3 * v, [1.0])
        self.check_unary('v * 3', lambda v: v * 3, [1.0])
        self.check_unary('3 / v', lambda v: 3 / v, [1.5])
        self.check_unary('v / 3', lambda v: v / 3, [1.5])
        self.assertEqual((2 - Value(5.0)).data, -3.0)
        self.assertEqual((3 / Value(1.5)).data, 2.0)

    def test_a_value_used_twice_accumulates_both_paths(self):
        x = Value(3.0)
        (x * x + x).backward()  # d/dx (x^2 + x) = 2x + 1
        self.assertEqual(x.grad, 7.0)


class TestFusedOps(unittest.TestCase):
    def test_dot_matches_finite_differences(self):
        rng = random.Random(0)
        a_data = [rng.uniform(-1, 1) for _ in range(5)]
        b_data = [rng.uniform(-1, 1) for _ in range(5)]
        a, b = [Value(x) for x in a_data], [Value(x) for x in b_data]
        out = microgpt.dot(a, b)
        self.assertAlmostEqual(out.data, sum(x * y for x, y in zip(a_data, b_data)))
        out.backward()
        for i in range(5):
            def f_a(t):
                return sum(x * y for x, y in zip(a_data[:i] + [t] + a_data[i + 1:], b_data))
            def f_b(t):
                return sum(x * y for x, y in zip(a_data, b_data[:i] + [t] + b_data[i + 1:]))
            assert_close(self, a[i].grad, numerical_grad(f_a, a_data[i]), what=f'a[{i}]')
            assert_close(self, b[i].grad, numerical_grad(f_b, b_data[i]), what=f'b[{i}]')

    def test_dot_of_a_vector_with_itself_counts_both_factors(self):
        x = [Value(2.0), Value(-3.0)]
        microgpt.dot(x, x).backward()  # d/dx_i sum x^2 = 2 x_i
        self.assertEqual([v.grad for v in x], [4.0, -6.0])

    def test_linear_matches_separate_dots(self):
        rng = random.Random(1)
        x = [Value(rng.uniform(-1, 1)) for _ in range(4)]
        w = [[Value(rng.uniform(-1, 1)) for _ in range(4)] for _ in range(3)]
        self.assertEqual([y.data for y in microgpt.linear(x, w)],
                         [microgpt.dot(row, x).data for row in w])

    def test_cross_entropy_matches_log_softmax_and_finite_differences(self):
        logits_data = [1.2, -0.4, 3.1, 0.0, 50.0]  # a large logit: must not overflow
        for target in (0, 2, 4):
            def f(data):
                top = max(data)
                return math.log(sum(math.exp(x - top) for x in data)) + top - data[target]
            logits = [Value(x) for x in logits_data]
            loss = microgpt.cross_entropy(logits, target)
            self.assertAlmostEqual(loss.data, f(logits_data))
            loss.backward()
            for i in range(len(logits_data)):
                numeric = numerical_grad(
                    lambda t: f(logits_data[:i] + [t] + logits_data[i + 1:]), logits_data[i])
                assert_close(self, logits[i].grad, numeric, what=f'logit {i}, target {target}')

    def test_softmax_sums_to_one_and_every_output_matches_finite_differences(self):
        data = [0.5, -1.0, 2.0, 60.0]  # a large score: must not overflow
        weights = microgpt.softmax([Value(x) for x in data])
        self.assertAlmostEqual(sum(w.data for w in weights), 1.0)

        def f(scores, i):
            exps = [math.exp(x - max(scores)) for x in scores]
            return exps[i] / sum(exps)
        for i in range(len(data)):
            inputs = [Value(x) for x in data]
            microgpt.softmax(inputs)[i].backward()
            for j in range(len(data)):
                numeric = numerical_grad(lambda t: f(data[:j] + [t] + data[j + 1:], i), data[j])
                assert_close(self, inputs[j].grad, numeric, what=f'dp_{i}/dx_{j}')


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
        unrelated = x * 5  # on the tape before the loss, not part of it
        loss = x * x
        later = loss * 7  # made from the loss afterwards, so not part of it either
        loss.backward()
        self.assertEqual(x.grad, 4.0)
        self.assertEqual((unrelated.grad, later.grad), (0.0, 0.0))

    def test_backward_twice_through_one_graph_is_a_clear_error(self):
        x = Value(3.0)
        loss = x * x
        loss.backward()
        with self.assertRaisesRegex(RuntimeError, 'already ran through this graph'):
            loss.backward()
        self.assertEqual(x.grad, 6.0)  # the first pass's gradient is kept
        (x * x).backward()  # a graph computed again backpropagates again
        self.assertEqual(x.grad, 12.0)


if __name__ == '__main__':
    unittest.main()
