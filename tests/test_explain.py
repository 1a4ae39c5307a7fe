"""--explain: the next-token table, the loss explained and the attention maps, checked against the
numbers it prints; and the mean surprise beside each sample."""
import contextlib
import io
import math
import os
import random
import re
import subprocess
import sys
import unittest

from tests.helpers import ROOT, microgpt
from tests.test_cli import SCRIPT, SMALL, CliTest

ROW = re.compile(r'^ *(\S+) → (\S+) +(\d\.\d{4}) +(\d+\.\d\d) \| (.*)$')
CELL = re.compile(r'(\S) ([█▉▊▋▌▍▎▏]*) \.(\d\d)')


def trained_model(steps=200):
    docs = microgpt.load_docs(os.path.join(ROOT, 'names.txt'))
    train_docs, _ = microgpt.split_docs(docs, 42, 0.1)
    tokenizer = microgpt.Tokenizer.from_docs(docs)
    config = microgpt.Config()
    params = microgpt.init_params(config, tokenizer.vocab_size, random.Random(42))
    list(microgpt.train(train_docs, tokenizer, params, config, steps, 0.01))
    return tokenizer, params, config


def bar_eighths(bar):
    return 8 * bar.count('█') + sum(' ▏▎▍▌▋▊▉'.index(ch) for ch in bar if ch != '█')


class TestExplain(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tokenizer, cls.params, cls.config = trained_model()
        with contextlib.redirect_stdout(io.StringIO()) as out:
            cls.loss = microgpt.explain('emma', cls.tokenizer, cls.params, cls.config, 2.3667)
        cls.out = out.getvalue()
        cls.rows = [ROW.match(line) for line in cls.out.splitlines() if ROW.match(line)]

    def test_one_row_per_position_ending_with_the_end_token(self):
        self.assertEqual([row[2] for row in self.rows], ['e', 'm', 'm', 'a', '.'])
        self.assertEqual([row[1] for row in self.rows], ['.', '.e', '.em', '.emm', '.emma'])

    def test_printed_probabilities_sum_to_1_over_the_vocabulary(self):
        for row in self.rows:
            cells = CELL.findall(row[5])
            self.assertEqual(len(cells), 5)
            rest = float(re.search(r'\+\.(\d\d)$', row[5])[1]) / 100
            total = sum(int(p) / 100 for _, _, p in cells) + rest
            self.assertLessEqual(abs(total - 1), 0.03, row[0])  # six numbers rounded to .01

    def test_surprise_is_minus_ln_of_the_printed_probability(self):
        for row in self.rows:
            self.assertAlmostEqual(float(row[4]), -math.log(float(row[3])), delta=0.006)

    def test_bars_are_proportional_to_p(self):
        cells = [cell for row in self.rows[1:3] for cell in CELL.findall(row[5])]
        for symbol, bar, p in cells:
            self.assertLessEqual(abs(bar_eighths(bar) - int(p) / 100 * 16 * 8), 1.5, cells)
        wide = max(cells, key=lambda cell: int(cell[2]))
        narrow = min(cells, key=lambda cell: int(cell[2]))
        self.assertGreater(bar_eighths(wide[1]), bar_eighths(narrow[1]))

    def test_the_explained_loss_is_document_loss_to_printed_precision(self):
        with microgpt.no_grad():
            loss = microgpt.document_loss('emma', self.tokenizer, self.params, self.config).data
        printed = float(re.search(r"loss of 'emma': (\d\.\d{4})", self.out)[1])
        self.assertAlmostEqual(printed, loss, places=4)
        self.assertIn('ln 27 = 3.2958', self.out)
        self.assertIn('this model on held-out docs: 2.3667', self.out)

    def test_attention_rows_sum_to_1_and_nothing_right_of_the_diagonal(self):
        tokens, positions = microgpt.look_inside('emma', self.tokenizer, self.params, self.config)
        self.assertEqual(len(positions), 5)
        for pos, (probs, weights) in enumerate(positions):
            self.assertAlmostEqual(sum(probs), 1.0)
            self.assertEqual(len(weights), self.config.n_layer * self.config.n_head)
            for head in weights:
                self.assertEqual(len(head), pos + 1)  # causal: only positions 0..pos exist
                self.assertAlmostEqual(sum(head), 1.0)
        grid = [line for line in self.out.splitlines() if re.match(r'^[.ema] [ ░▒▓█]', line)]
        self.assertEqual(len(grid), 5)
        for row, line in enumerate(grid):
            first_head = line[2:2 + 5]
            self.assertEqual(first_head[row + 1:], '·' * (4 - row))  # hidden: later tokens

    def test_part_1_and_part_2_hand_back_the_same_attention_weights(self):
        fast = microgpt.look_inside('ava', self.tokenizer, self.params, self.config)[1]
        microgpt.use_efficiency(False)
        try:
            plain = microgpt.look_inside('ava', self.tokenizer, self.params, self.config)[1]
        finally:
            microgpt.use_efficiency(True)
        for (_, weights_a), (_, weights_b) in zip(fast, plain):
            for head_a, head_b in zip(weights_a, weights_b):
                for a, b in zip(head_a, head_b):
                    self.assertAlmostEqual(a, b, places=12)

    def test_a_habit_is_named_only_over_half_the_weight(self):
        previous = [[1.0], [0.9, 0.1], [0.1, 0.8, 0.1]]
        self.assertEqual(microgpt.attention_habit(previous), '85% on the previous token')
        spread = [[1.0], [0.5, 0.5], [0.3, 0.3, 0.4]]
        self.assertEqual(microgpt.attention_habit(spread), 'no one habit')


class TestExplainFlag(CliTest):
    def test_load_with_steps_0_explains_without_evaluating_and_bad_words_fail(self):
        ckpt = self.path('model.json')
        self.ok('--input', self.docs_path, *SMALL, '--steps', '20', '--samples', '0',
                '--eval-docs', '5', '--save', ckpt)
        out = self.ok('--input', self.docs_path, '--load', ckpt, '--steps', '0', '--samples',
                      '0', '--explain', 'emma', 'ava')
        self.assertNotIn('evaluating', out)
        self.assertEqual(out.count('explaining'), 2)
        for word, mentions in (('emmA', "'A' is not in the vocabulary"), ('x' * 8, 'fits 1 to 7')):
            code, _, err = run(['--input', self.docs_path, '--load', ckpt, '--steps', '0',
                                '--explain', word])
            self.assertEqual(code, 2)
            self.assertEqual(len(err.strip().splitlines()), 1)
            self.assertIn(mentions, err)

    def test_a_wide_model_stays_within_100_columns(self):
        out = self.ok('--input', self.docs_path, '--n-embd', '16', '--n-head', '8',
                      '--block-size', '32', '--steps', '2', '--samples', '0', '--eval-docs',
                      '0', '--explain', 'abcdefghijklmnopqrstuvwxyzabcd')
        self.assertTrue(all(len(line) <= 100 for line in out.splitlines()))
        self.assertEqual(out.count('layer 0 head '), 8)

    def test_each_sample_shows_its_mean_surprise(self):
        out = self.ok('--input', self.docs_path, *SMALL, '--steps', '5', '--samples', '3',
                      '--eval-docs', '0')
        surprises = re.findall(r'^sample +\d+  \S+(?: \S+)? +(\d+\.\d\d)  ', out, re.M)
        self.assertEqual(len(surprises), 3)
        self.assertTrue(all(float(s) > 0 for s in surprises))


def run(args):
    result = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                            timeout=120)
    return result.returncode, result.stdout, result.stderr


if __name__ == '__main__':
    unittest.main()
