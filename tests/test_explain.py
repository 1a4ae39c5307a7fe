"""--explain: at each position of a word, the probability of the right next token, its surprise and
what the model expected most, checked against the model's own numbers."""
import contextlib
import io
import math
import re
import unittest

from tests.helpers import CliTest, efficiency, microgpt, names_setup

ROW = re.compile(r'^(\S) → (\S)  p (\d\.\d{4})  surprise +(\d+\.\d\d) \| it expected most: (.*)$')


class TestExplain(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        docs, cls.tokenizer, cls.config, cls.params = names_setup()
        with efficiency():
            microgpt.train(docs, cls.tokenizer, cls.params, cls.config, 200, 0.01)
        cls.reading = microgpt.read_along('emma', cls.tokenizer, cls.params, cls.config)
        with contextlib.redirect_stdout(io.StringIO()) as out:
            microgpt.explain(cls.reading, cls.tokenizer.chars + '.')
        cls.rows = [ROW.match(line) for line in out.getvalue().splitlines() if ROW.match(line)]

    def test_one_row_per_position_from_bos_to_the_end_token(self):
        self.assertEqual([(row[1], row[2]) for row in self.rows],
                         [('.', 'e'), ('e', 'm'), ('m', 'm'), ('m', 'a'), ('a', '.')])

    def test_surprise_is_minus_ln_p_and_their_mean_is_the_loss_of_the_word(self):
        for row in self.rows:
            self.assertAlmostEqual(float(row[4]), -math.log(float(row[3])), delta=0.006)
        loss = microgpt.document_loss('emma', self.tokenizer, self.params, self.config).data
        self.assertAlmostEqual(sum(float(row[4]) for row in self.rows) / 5, loss, delta=0.006)

    def test_the_expected_tokens_are_the_five_most_probable_in_order(self):
        keys = [[] for _ in range(self.config.n_layer)]
        values = [[] for _ in range(self.config.n_layer)]
        shown = self.tokenizer.chars + '.'
        for pos, (token, row) in enumerate(zip([self.tokenizer.bos] + self.tokenizer.encode('emma'),
                                               self.rows)):
            logits = microgpt.gpt(token, pos, keys, values, self.params, self.config)
            probs = [p.data for p in microgpt.softmax(logits)]
            ranked = sorted(range(len(probs)), key=lambda i: probs[i], reverse=True)[:5]
            cells = re.findall(r'(\S) (\d\.\d\d)', row[5])
            self.assertEqual([symbol for symbol, _ in cells], [shown[i] for i in ranked])
            for (_, p), i in zip(cells, ranked):
                self.assertAlmostEqual(float(p), probs[i], delta=0.005)


class TestAttentionInTheTerminal(TestExplain):
    def test_each_head_shows_a_row_for_each_position_shaded_over_the_positions_it_reads(self):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            microgpt.explain(self.reading, self.tokenizer.chars + '.')
        lines = out.getvalue().splitlines()
        start = lines.index('  .emma | .emma | .emma | .emma')
        shades = lines[start + 1:start + 6]
        for pos, (line, (_, _, _, heads)) in enumerate(zip(shades, self.reading)):
            self.assertEqual(line[0], '.emma'[pos])
            cells = line[2:].split(' | ')
            self.assertEqual(len(cells), 4)
            for cell, weights in zip(cells, heads):
                self.assertEqual(cell.rstrip(), ''.join('·░▒▓█'[round(w * 4)] for w in weights))
                self.assertEqual(len(cell.rstrip()), pos + 1)  # what it reads so far, no more


class TestExplainFlag(CliTest):
    def test_an_attention_that_calls_no_softmax_shows_no_weights_and_says_so(self):
        out = self.ok(*self.base, '--steps', '3', '--n-layer', '0', '--explain', 'ann')
        self.assertIn('no attention weights to show', out)

    def test_explain_after_loading_explains_each_word_and_stays_within_100_columns(self):
        path = self.path('model.json')
        self.ok(*self.base, '--steps', '20', '--save', path)
        out = self.ok('--input', self.docs_path, '--load', path, '--steps', '0', '--samples',
                      '0', '--eval-docs', '0', '--explain', 'emma', 'ava')
        self.assertEqual(out.count('as the model reads it'), 2)
        self.assertEqual(len([line for line in out.splitlines() if ROW.match(line)]), 5 + 4)
        self.assertTrue(all(len(line) <= 100 for line in out.splitlines() if ROW.match(line)))


if __name__ == '__main__':
    unittest.main()
