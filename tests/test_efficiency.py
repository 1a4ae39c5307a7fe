"""Part 2 changes no numbers: the same losses and gradients as Part 1. And what a learner edits in
Part 1 is what runs: each stand-in is checked against Part 1 as the file stands, every run."""
import gc
import os
import re
import subprocess
import sys
import tempfile
import unittest
from concurrent.futures import ThreadPoolExecutor

from tests.helpers import NAMES, ROOT, efficiency, microgpt, names_setup

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
        plain = losses_and_gradients(docs, True, attention=microgpt.PART1['attention'])
        self.assert_same(plain, losses_and_gradients(docs, True))

    def test_the_tape_gives_the_loss_and_gradients_of_backward(self):
        results = []
        for on_tape in (False, True):
            train_docs, tokenizer, config, params = names_setup(seed=2, config=TWO_LAYERS)
            if on_tape:
                loss = microgpt.document_loss_and_gradients('isabella', tokenizer, params, config)
            else:
                loss = microgpt.document_loss('isabella', tokenizer, params, config)
                loss.backward()
                loss = loss.data
            results.append((loss, [p.grad for p in microgpt.flatten(params)]))
        self.assert_same([results[0]], [results[1]])
        self.assertEqual(len(microgpt.Value.tape), 0)  # the tape is put away after the loss

    def test_10_training_steps_give_the_same_losses(self):
        runs = []
        for on in (False, True):
            train_docs, tokenizer, config, params = names_setup(seed=3, config=TWO_LAYERS)
            with efficiency(on):
                runs.append(list(microgpt.train(train_docs, tokenizer, params, config, 10, 0.01)))
        self.assertEqual(len(runs[1]), 10)
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


class TestWhatYouReadRuns(unittest.TestCase):
    def tearDown(self):
        microgpt.use_efficiency()

    def test_use_efficiency_puts_every_stand_in_in_place_and_false_puts_part_1_back(self):
        self.assertEqual(microgpt.use_efficiency(), [])  # the file as it stands: all agree
        for name, (stand_in, _) in microgpt.STAND_INS.items():
            self.assertIs(getattr(microgpt, name), stand_in)
        self.assertEqual(microgpt.use_efficiency(False), [])
        for name, function in microgpt.PART1.items():
            self.assertIs(getattr(microgpt, name), function)

    def test_a_part_1_function_that_differs_keeps_its_place_and_is_named(self):
        plain_mlp = microgpt.PART1['mlp']

        def squared_relu_mlp(x, w_fc1, w_fc2):  # a learner's edit
            hidden = [h.relu() ** 2 for h in microgpt.linear(x, w_fc1)]
            return microgpt.linear(hidden, w_fc2)
        microgpt.PART1['mlp'] = squared_relu_mlp
        try:
            notes = microgpt.use_efficiency()
        finally:
            microgpt.PART1['mlp'] = plain_mlp
        self.assertEqual(notes, ["Part 1's mlp (with Value.relu, linear) differs from "
                                 'mlp_relu_skip: running mlp as written'])
        self.assertIs(microgpt.mlp, squared_relu_mlp)
        self.assertIs(microgpt.linear, microgpt.linear_fused)  # the others still stand in

    def test_the_collector_is_paused_during_a_step_and_restored_after_and_on_ctrl_c(self):
        train_docs, tokenizer, config, params = names_setup()
        seen = []

        class Docs(list):
            def __getitem__(self, i):
                if i == 2:
                    raise KeyboardInterrupt
                return super().__getitem__(i)

        real_loss = microgpt.document_loss_and_gradients

        def noting_loss(*args):
            seen.append(gc.isenabled())
            return real_loss(*args)
        microgpt.document_loss_and_gradients = noting_loss
        try:
            self.assertTrue(gc.isenabled())
            steps = microgpt.train(Docs(train_docs), tokenizer, params, config, 5, 0.01)
            next(steps)
            self.assertTrue(gc.isenabled())  # on between steps
            with self.assertRaises(KeyboardInterrupt):
                list(steps)
        finally:
            microgpt.document_loss_and_gradients = real_loss
        paused = sys.implementation.name == 'cpython'  # PyPy's collector is left alone
        self.assertEqual(seen, [not paused] * 2)
        self.assertTrue(gc.isenabled())


# A learner's edits to Part 1, each in a copy of the file: (function, what it says, what it becomes)
EDITS = [
    ('linear', '    return [sum(w_ij * x_j for w_ij, x_j in zip(row, x)) for row in w]',
     '    return [sum(w_ij * x_j for w_ij, x_j in zip(row, x)) * 1.5 for row in w]'),
    ('mlp', '    hidden = [h.relu() for h in hidden]',
     '    hidden = [h.relu() ** 2 for h in hidden]'),
    ('softmax', '    exps = [(logit - max_logit).exp() for logit in logits]',
     '    exps = [(logit - max_logit).exp() + 0.01 for logit in logits]'),
    ('adam_update', '        p.data -= lr * m_hat / (math.sqrt(v_hat) + eps)',
     '        p.data -= 2 * lr * m_hat / (math.sqrt(v_hat) + eps)'),
    ('Value.relu', '        return Value(max(self.data, 0.0), (self,), (float(self.data > 0),))',
     '        return Value(max(self.data, 0.1 * self.data), (self,), '
     '(1.0 if self.data > 0 else 0.1,))'),
]
FLAGS = ['--input', NAMES, '--steps', '6', '--eval-docs', '10', '--samples', '3', '--n-embd', '8',
         '--n-head', '2', '--block-size', '8']


def figures(stdout):  # every printed loss and sample, without the times
    lines = [line for line in stdout.splitlines() if re.match(r'(trained|loss|sample )', line)]
    return [re.sub(r' in [\d.]+s', '', line) for line in lines]


class TestAnEditToPart1ChangesTheRun(unittest.TestCase):
    def run_copy(self, source, *flags):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, 'microgpt.py')
            with open(path, 'w', encoding='utf-8') as f:
                f.write(source)
            result = subprocess.run([sys.executable, path, *FLAGS, *flags], capture_output=True,
                                    text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_each_edit_runs_as_written_equals_reference_and_is_named(self):
        with open(os.path.join(ROOT, 'microgpt.py'), encoding='utf-8') as f:
            source = f.read()
        for _, before, _ in EDITS:
            self.assertEqual(source.count(before), 1)
        edited = [source.replace(before, after) for _, before, after in EDITS]
        runs = [(source, ())]
        runs += [(copy, flags) for copy in edited for flags in ((), ('--reference',))]
        with ThreadPoolExecutor(2) as pool:  # two runs at a time, one a core
            outputs = list(pool.map(lambda run: self.run_copy(run[0], *run[1]), runs))
        unedited = outputs[0]
        self.assertNotIn("Part 1's", unedited)
        for (function, _, _), out, reference in zip(EDITS, outputs[1::2], outputs[2::2]):
            with self.subTest(function):
                self.assertNotEqual(figures(out), figures(unedited))
                self.assertEqual(figures(out), figures(reference))
                notes = [line for line in out.splitlines() if line.startswith("Part 1's")]
                self.assertTrue(notes)
                self.assertTrue(all(function in line and 'as written' in line for line in notes),
                                notes)


if __name__ == '__main__':
    unittest.main()
