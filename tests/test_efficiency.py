"""Part 2 changes no numbers: the same losses and gradients as Part 1 (the proof, run under every
interpreter CI runs). And what a learner edits in Part 1 is what runs: each stand-in is bound to
the source it was proven against, so an edit (a print, a schedule, a gradient) runs as written."""
import ast
import gc
import linecache
import os
import random
import re
import subprocess
import sys
import tempfile
import unittest
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

from tests.helpers import NAMES, ROOT, SCRIPT, efficiency, microgpt, names_setup

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


def training_run(on, steps=10):  # each step's loss, then every weight
    train_docs, tokenizer, config, params = names_setup(seed=3, config=TWO_LAYERS)
    with efficiency(on):
        losses = microgpt.train(train_docs, tokenizer, params, config, steps, 0.01)
    return losses, [p.data for p in microgpt.flatten(params)]


class TestSameNumbers(unittest.TestCase):
    def assert_same(self, reference, fast):
        self.assertEqual(len(reference), len(fast))
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
        plain = losses_and_gradients(docs, True, attention=microgpt.attention)
        self.assert_same(plain, losses_and_gradients(docs, True))

    def test_10_training_steps_on_the_tape_give_the_losses_and_weights_of_part_1(self):
        reference = training_run(False)
        fast = training_run(True)
        self.assertEqual(len(fast[0]), 10)
        for a, b in zip(reference[0] + reference[1], fast[0] + fast[1]):
            self.assertLessEqual(abs(a - b), 1e-9 * max(abs(a), 1.0))

    def test_backward_from_a_value_that_is_not_the_newest_searches_as_part_1_does(self):
        with efficiency():
            microgpt.Value.__init__ = microgpt.value_init_on_tape
            microgpt.Value.backward = microgpt.backward_on_tape
            try:
                x = microgpt.Value(2.0)
                square = x * x
                triple = x * 3
                square.backward()  # triple is newer: square's graph is searched, not the tape read
                triple.backward()  # the newest, but the tape was put away: searched too
            finally:
                microgpt.Value.__init__ = microgpt.AS_WRITTEN['Value.__init__']
                microgpt.Value.backward = microgpt.AS_WRITTEN['Value.backward']
        self.assertEqual(x.grad, 4.0 + 3.0)
        self.assertEqual(microgpt.tape, [])

    def test_a_value_made_before_training_and_used_in_every_step_gives_part_1s_numbers(self):
        part_1_mlp = microgpt.mlp
        scale = microgpt.Value(2.0) ** 0.5  # made once, outside any step, by an op

        def mlp(x, w_fc1, w_fc2):  # a learner's: the hidden units scaled by it
            hidden = [h.relu() * scale for h in microgpt.linear(x, w_fc1)]
            return microgpt.linear(hidden, w_fc2)
        runs = []
        for on in (False, True):
            train_docs, tokenizer, config, params = names_setup(seed=3, config=TWO_LAYERS)
            microgpt.mlp = mlp
            try:
                with microgpt.efficiency(on) as notes:  # the tape still in place
                    losses = microgpt.train(train_docs, tokenizer, params, config, 10, 0.01)
            finally:
                microgpt.mlp = part_1_mlp
            runs.append((losses, [p.data for p in microgpt.flatten(params)]))
        self.assertIn('train_on_tape (each', notes[0])
        for a, b in zip(runs[0][0] + runs[0][1], runs[1][0] + runs[1][1]):
            self.assertLessEqual(abs(a - b), 1e-9 * max(abs(a), 1.0))


def part_1_pieces():
    """'name' or 'Class.method' for every function and method that Part 1 defines."""
    with open(SCRIPT, encoding='utf-8') as f:
        source = f.read()
    part_1 = source[source.index('# ==== Part 1'):source.index('# ==== Part 2')]
    pieces = []
    for node in ast.parse(part_1).body:
        if isinstance(node, ast.FunctionDef):
            pieces.append(node.name)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    pieces.append(f'{node.name}.{item.name}')
                elif isinstance(item, ast.Assign) and isinstance(item.value, ast.Name):
                    pieces += [f'{node.name}.{target.id}' for target in item.targets]
    return pieces


class TestProven(unittest.TestCase):
    def test_proven_holds_every_part_1_pieces_source_hash_as_it_stands(self):
        # If this fails after an edit to Part 1, run the whole suite, and if the proofs above
        # still pass, put the dict printed here in Part 2 as PROVEN.
        hashes = {piece: microgpt.source_hash(microgpt.part_1_piece(piece))
                  for piece in part_1_pieces()}
        self.assertEqual(microgpt.PROVEN, hashes, f'\nPROVEN = {hashes!r}')

    def test_the_source_hash_sees_code_and_not_comments_or_blank_lines(self):
        plain = hash_of('def f(x):\n    return x + 1\n')
        self.assertEqual(hash_of('def f(x):  # a comment\n\n    return x + 1  # another\n'), plain)
        self.assertNotEqual(hash_of('def f(x):\n    return x + 2\n'), plain)
        self.assertNotEqual(hash_of('def f(x):\n    print(x)\n    return x + 1\n'), plain)
        self.assertIsNone(microgpt.source_hash(eval('lambda x: x')))  # no source to read


def hash_of(source):  # source_hash() of the function f that source defines, as a notebook cell
    filename = f'<cell {len(linecache.cache)}>'
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {}
    exec(compile(source, filename, 'exec'), namespace)
    return microgpt.source_hash(namespace['f'])


class TestEfficiency(unittest.TestCase):
    def test_it_puts_each_stand_in_in_place_and_part_1_s_own_back_after(self):
        part_1 = {name: getattr(microgpt, name) for name in microgpt.STAND_INS}
        with microgpt.efficiency() as notes:
            for name, (stand_in, _) in microgpt.STAND_INS.items():
                self.assertIs(getattr(microgpt, name), stand_in)
        self.assertEqual(len(notes), 1, notes)
        self.assertIn("Part 2's stand-ins in place: linear_fused, rmsnorm_fused, attention_fused,"
                      ' mlp_relu_skip, cross_entropy_fused, train_on_tape (', notes[0])
        for name, function in part_1.items():
            self.assertIs(getattr(microgpt, name), function)
        self.assertEqual(microgpt.mlp.__name__, 'mlp')
        with microgpt.efficiency(False) as notes:
            self.assertIs(microgpt.linear, part_1['linear'])
        self.assertIn('--reference', notes[0])

    def test_a_redefined_softmax_is_what_train_mean_loss_and_sample_use(self):
        part_1_softmax = microgpt.softmax

        def softmax(logits):  # a learner's: sharper, with the scores doubled
            return part_1_softmax([logit * 2 for logit in logits])
        results = []
        for on in (False, True):
            microgpt.softmax = softmax
            try:
                train_docs, tokenizer, config, params = names_setup(seed=6, config=TWO_LAYERS)
                with microgpt.efficiency(on) as notes:
                    losses = microgpt.train(train_docs, tokenizer, params, config, 5, 0.01)
                    held_out = microgpt.mean_loss(train_docs[:5], tokenizer, params, config)
                    text = microgpt.sample(params, config, tokenizer, random.Random(1))
                    in_place = {name for name, (stand_in, _) in microgpt.STAND_INS.items()
                                if getattr(microgpt, name) is stand_in}
                results.append((losses, held_out, text))
                self.assertIs(microgpt.softmax, softmax)  # still the learner's, after
            finally:
                microgpt.softmax = part_1_softmax
        self.assertEqual(in_place, {'linear', 'rmsnorm', 'mlp', 'train'})
        self.assertEqual(notes[1], "softmax is edited: Part 1's attention, cross_entropy run in "
                                   'place of attention_fused, cross_entropy_fused')
        for a, b in zip(results[0][0] + [results[0][1]], results[1][0] + [results[1][1]]):
            self.assertLess(abs(a - b), 1e-9)
        self.assertEqual(results[0][2], results[1][2])
        train_docs, tokenizer, config, params = names_setup(seed=6, config=TWO_LAYERS)
        self.assertNotEqual(microgpt.train(train_docs, tokenizer, params, config, 5, 0.01),
                            results[0][0])  # the redefinition did change the numbers

    def test_the_collector_is_paused_inside_and_as_it_was_after_even_after_an_error(self):
        self.assertTrue(gc.isenabled())
        with self.assertRaises(KeyboardInterrupt):
            with microgpt.efficiency():
                self.assertEqual(gc.isenabled(), sys.implementation.name != 'cpython')
                raise KeyboardInterrupt
        self.assertTrue(gc.isenabled())
        self.assertEqual(microgpt.linear.__name__, 'linear')

    def test_where_no_source_can_be_read_part_1_runs_alone_and_says_so(self):
        real = {piece: microgpt.part_1_piece(piece) for piece in microgpt.PROVEN}
        with mock.patch.object(microgpt, 'source_hash', lambda function: None):
            with microgpt.efficiency() as notes:
                self.assertIs(microgpt.linear, real['linear'])
        self.assertEqual(notes, ["Part 1's source cannot be read here: it runs as written, "
                                 'without Part 2'])


# A learner's edits to Part 1, each in a copy of the file: (piece, what it says, what it becomes)
EDITS = [
    ('train', '        lr_now = lr * (1 - step / steps)\n',
     '        lr_now = lr * 0.5 * (1 + math.cos(math.pi * step / steps))  # cosine\n'),
    ('mlp', '    hidden = [h.relu() for h in hidden]\n',
     '    hidden = [h.relu() for h in hidden]\n'
     '    print("mlp", sum(h.data > 0 for h in hidden))\n'),
    ('adam_update', '        p.grad = 0.0  # backward()',
     '        print("adam", i) if i % 1000 == 0 else None\n        p.grad = 0.0  # backward()'),
    ('Value.__mul__', '(self, other), (other.data, self.data))',
     '(self, other), (self.data, other.data))'),
    ('Value.backward', '                child.grad += local_grad * node.grad\n',
     '                child.grad += 0.9 * local_grad * node.grad\n'),
    ('mlp', '    hidden = [h.relu() for h in hidden]\n',
     '    hidden = [h * (1 / (1 + (-h).exp())) for h in hidden]  # SiLU: h sigmoid(h)\n'),
    ('attention', '/ math.sqrt(head_dim) for k in keys]', '/ head_dim for k in keys]'),
    ('init_params', '    return params\n',  # lm_head tied to wte: not leaves, a graph behind
     "    params['lm_head'] = [[w * 1.0 for w in row] for row in params['wte']]\n    return params\n"),
    ('mlp', '    hidden = [h.relu() for h in hidden]\n',
     '    hidden = [h.relu() for h in hidden]\n'
     '    ACTIVE.append(sum(h.data > 0 for h in hidden))\n'),
]
FLAGS = ['--input', NAMES, '--steps', '5', '--eval-docs', '10', '--samples', '3', '--n-embd', '8',
         '--n-head', '2', '--block-size', '8']
NOTICE = re.compile(r"^(Part 2's stand-ins|Part 1 alone|\S+ is edited: ).*\n", re.M)


def without_notices_and_times(stdout):
    return re.sub(r' \| [\d.]+s$', '', NOTICE.sub('', stdout), flags=re.M)


class TestAnEditToPart1RunsAsWritten(unittest.TestCase):
    def run_copy(self, source, *flags):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, 'microgpt.py')
            with open(path, 'w', encoding='utf-8') as f:
                f.write(source)
            result = subprocess.run([sys.executable, path, *FLAGS, *flags], capture_output=True,
                                    text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_each_edit_prints_what_reference_prints_and_its_piece_is_named(self):
        with open(SCRIPT, encoding='utf-8') as f:
            source = f.read()
        edited = []
        for _, before, after in EDITS:
            self.assertEqual(source.count(before), 1, before)
            copy = source.replace(before, after)
            if 'ACTIVE' in after:  # a list the learner appends to, and prints at the end
                copy = copy.replace('# ---- Dataset', 'ACTIVE = []\n\n# ---- Dataset')
                copy += "    print('ACTIVE', len(ACTIVE), sum(ACTIVE))\n"
            edited.append(copy)
        both = ((), ('--reference',))
        runs = [(source, ())] + [(copy, flags) for copy in edited for flags in both]
        with ThreadPoolExecutor(2) as pool:  # two runs at a time, one a core
            outputs = list(pool.map(lambda run: self.run_copy(run[0], *run[1]), runs))
        unedited = outputs[0]
        self.assertNotIn('is edited', unedited)
        for (piece, _, after), out, reference in zip(EDITS, outputs[1::2], outputs[2::2]):
            with self.subTest(after.strip()):
                self.assertNotEqual(without_notices_and_times(out),
                                    without_notices_and_times(unedited))
                self.assertEqual(without_notices_and_times(out),
                                 without_notices_and_times(reference))
                notes = [line for line in out.splitlines() if ' is edited: ' in line]
                self.assertEqual([note.split()[0] for note in notes], [piece])
        self.assertGreater(outputs[3].count('\nmlp '), 100)  # training, evaluation, sampling
        self.assertRegex(outputs[-2], r'\nACTIVE [1-9]\d+ ')


if __name__ == '__main__':
    unittest.main()
