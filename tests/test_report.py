"""What the run reports about itself: the held-out loss beside models that only count, samples
along the way that change nothing else, and the surprise of the samples beside real documents."""
import math
import random
import re
import subprocess
import sys
import unittest
from collections import Counter
from fractions import Fraction

from tests.helpers import NAMES, SCRIPT, SMALL, CliTest, microgpt, names_setup, samples_of

FIGURES = re.compile(r'^(step \d+/\d+ \| loss \S+ \| last 100: \S+|loss on .*|sample .*|'
                     r'mean surprise.*|saved.*)', re.M)


def counting_losses_by_hand(all_docs, train_docs, held_out, block_size):
    """Another route to the same figures: counts of strings, exact fractions, ^ and $ for BOS."""
    pairs = Counter()
    for doc in train_docs:
        text = '^' + doc + '$'
        pairs.update(text[i:i + 2] for i in range(len(text) - 1))
    alphabet = sorted(set(''.join(all_docs))) + ['$']  # every token that can come next
    followers = Counter()
    for pair, count in pairs.items():
        followers[pair[1]] += count
    total = sum(followers.values())
    unigram = []
    bigram = []
    for doc in held_out:
        text = ('^' + doc + '$')[:block_size + 1]
        steps = [text[i:i + 2] for i in range(len(text) - 1)]
        unigram.append(sum(-math.log(Fraction(followers[b] + 1, total + len(alphabet)))
                           for _, b in steps) / len(steps))
        bigram.append(sum(-math.log(Fraction(pairs[a + b] + 1, sum(
            pairs[a + c] for c in alphabet) + len(alphabet))) for a, b in steps) / len(steps))
    return sum(unigram) / len(unigram), sum(bigram) / len(bigram)


class TestLossInContext(CliTest):
    def test_the_printed_counting_losses_match_a_count_made_another_way(self):
        # 150 training names: few enough counts that the added 1s show in the fourth decimal
        out = self.ok('--input', self.docs_path, '--val-fraction', '0.5', '--steps', '0',
                      '--eval-docs', '100', '--samples', '0', '--block-size', '6', '--n-embd',
                      '8', '--n-head', '2')
        printed = re.search(r'loss on 100 held-out docs \S+; counting in training docs: pairs '
                            r'(\S+), letters (\S+); uniform (\S+)$', out, re.M)
        self.assertTrue(printed, out)
        docs = microgpt.load_docs(self.docs_path)
        train_docs, val_docs = microgpt.split_docs(docs, 42, 0.5)
        unigram, bigram = counting_losses_by_hand(docs, train_docs, val_docs[:100], 6)
        self.assertEqual(printed[1], f'{bigram:.4f}')
        self.assertEqual(printed[2], f'{unigram:.4f}')
        self.assertEqual(printed[3], f'{math.log(len(set("".join(docs))) + 1):.4f}')
        self.assertLess(bigram, unigram)  # counting pairs beats counting letters


class TestSamplesAlongTheWay(CliTest):
    def test_they_change_no_later_figure(self):
        with open(SCRIPT, encoding='utf-8') as f:
            source = f.read()
        moments = 'if step in (1, steps // 10, steps // 2):'
        self.assertEqual(source.count(moments), 1)
        without = self.path('without_them.py', source.replace(moments, 'if False:'))
        args = [*self.base, '--steps', '60', '--samples', '5', '--save', self.path('m.json')]
        with_them = self.ok(*args)
        result = subprocess.run([sys.executable, without, *args], capture_output=True, text=True,
                                cwd=self.dir, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('samples after step 6 ', with_them)
        self.assertNotIn('samples after', result.stdout)
        self.assertEqual(FIGURES.findall(with_them), FIGURES.findall(result.stdout))
        self.assertGreater(len(FIGURES.findall(with_them)), 10)


class TestTheMirror(CliTest):
    def test_it_sets_the_new_names_alone_against_the_held_out_loss_and_says_which_is_likelier(self):
        words = set()
        for temperature in ('0.3', '1.5'):
            out = self.ok('--input', NAMES, *SMALL, '--steps', '200', '--eval-docs', '100',
                          '--samples', '12', '--temperature', temperature)
            mirror = re.search(rf'^mirror: at temperature {temperature}, its new names \(mean '
                               r'surprise (\d\.\d\d)\) are '
                               r'(as likely as|likelier than|less likely than) real names it '
                               r'never saw \((\d\.\d\d)\)', out, re.M)
            self.assertTrue(mirror, out)
            new = [surprise for _, status, surprise in samples_of(out) if status == 'new']
            if temperature == '0.3':
                self.assertLess(len(new), 12)  # some samples are real names: left out of it
            self.assertAlmostEqual(float(mirror[1]), sum(new) / len(new), delta=0.006)
            held_out = float(re.search(r'loss on 100 held-out docs (\S+);', out)[1])
            self.assertAlmostEqual(float(mirror[3]), held_out, delta=0.0051)
            gap = float(mirror[1]) - held_out
            word = 'as likely as' if abs(gap) <= 0.1 else 'likelier than' if gap < 0 else \
                'less likely than'
            self.assertEqual(mirror[2], word)
            words.add(word)
            unseen = sum(status == 'real, unseen' for _, status, _ in samples_of(out))
            self.assertIn(f'not what is true: real but unseen, {unseen} of 12 samples.', out)
        self.assertEqual(words, {'likelier than', 'less likely than'})

    def test_a_sample_s_surprise_is_its_loss_as_a_document(self):
        train_docs, tokenizer, config, params = names_setup(config=microgpt.Config(n_embd=8,
                                                                                  n_head=2))
        text = microgpt.sample(params, config, tokenizer, random.Random(3), 1.0)
        loss = microgpt.document_loss(text, tokenizer, params, config).data
        self.assertEqual(microgpt.mean_loss([text], tokenizer, params, config), loss)


if __name__ == '__main__':
    unittest.main()
