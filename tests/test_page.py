"""The page of a run (--html): one self-contained file whose pictures hold the run's own numbers,
opened from disk in a real headless browser; and the same pictures under a notebook's cell."""
import os
import re
import shutil
import statistics
import struct
import subprocess
import tempfile
import unittest
import zlib

from tests.helpers import NAMES, SMALL, CliTest, efficiency, microgpt, names_setup

BROWSER = shutil.which('chromium') or shutil.which('chromium-browser')
REQUIRED = os.environ.get('MICROGPT_REQUIRE_BROWSER') == '1'  # set by .ci/run, which installs it


class PageTest(CliTest):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.TemporaryDirectory()
        cls.page_path = os.path.join(cls.folder.name, 'run.html')
        cls.out = subprocess.run(
            [os.sys.executable, os.path.join(os.path.dirname(NAMES), 'microgpt.py'), '--input',
             NAMES, *SMALL, '--steps', '60', '--eval-docs', '40', '--samples', '6', '--explain',
             'emma', '--html', cls.page_path], capture_output=True, text=True, timeout=300).stdout
        with open(cls.page_path, encoding='utf-8') as f:
            cls.page = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()


class TestThePageHoldsTheRunsNumbers(PageTest):
    def test_the_loss_chart_has_the_held_out_loss_and_the_baselines_as_printed(self):
        printed = re.search(r'loss on 40 held-out docs (\S+); counting in training docs: pairs '
                            r'(\S+), letters (\S+); uniform (\S+)', self.out)
        for name, value in zip(('held out', 'pairs', 'letters', 'uniform'), printed.groups()):
            self.assertIn(f'>{name} {float(value):.2f}</text>', self.page)
        self.assertEqual(self.page.count('<polyline'), 2)  # each step's loss, and their mean
        self.assertIn('>training step</text>', self.page)
        self.assertIn('>loss (nats)</text>', self.page)
        for step in ('1', '6', '30'):  # the samples along the way, at their steps
            names = re.search(rf'samples after step {step} \(loss \S+\): (.*)', self.out)[1]
            self.assertIn(f">{' '.join(names.split(' ')[:2])}</text>", self.page)

    def test_each_heads_attention_row_sums_to_1_over_what_it_may_read_and_is_0_beyond(self):
        heads = re.findall(r'<svg[^>]*><title>head \d+</title>(.*?)</svg>', self.page)
        self.assertEqual(len(heads), 2)  # SMALL: two heads
        for head in heads:
            rows = {}
            for y, opacity in re.findall(r'y="(\d+)" height="15" width="14.0" fill="#08519c" '
                                         r'fill-opacity="([\d.]+)"', head):
                rows.setdefault(int(y), []).append(float(opacity))
            self.assertEqual([len(row) for row in rows.values()], [1, 2, 3, 4, 5])  # . e m m a
            for row in rows.values():
                self.assertAlmostEqual(sum(row), 1.0, delta=0.003 * len(row))

    def test_the_samples_and_the_facts_of_the_run_are_on_it(self):
        for line in re.findall(r'^sample .*$', self.out, re.M):
            self.assertIn(line.replace('\n', ''), self.page)
        self.assertIn('flags: --input', self.page)
        self.assertIn('Config(n_embd=8, n_head=2, n_layer=1, block_size=8)', self.page)

    def test_it_is_one_file_that_fetches_nothing(self):
        self.assertTrue(self.page.startswith(microgpt.PAGE_START))
        self.assertNotRegex(self.page, r'<script|src=|href=|url\(')


class TestTheNumbersBehindThePictures(unittest.TestCase):
    def test_attention_kept_is_what_part_1_computes_and_reads_only_earlier_positions(self):
        _, tokenizer, config, params = names_setup()
        rows = microgpt.read_along('emma', tokenizer, params, config)
        self.assertEqual(len(rows), 5)
        for pos, (token, next_token, probs, heads) in enumerate(rows):
            self.assertEqual(len(heads), config.n_layer * config.n_head)
            for weights in heads:
                self.assertEqual(len(weights), pos + 1)
                self.assertAlmostEqual(sum(weights), 1.0)
            self.assertAlmostEqual(sum(probs), 1.0)
        self.assertEqual(microgpt.softmax.__name__, 'softmax')  # Part 1's own, back in place
        with efficiency():  # the probabilities are those Part 2 computes, too
            logits = microgpt.gpt(tokenizer.bos, 0, [[]], [[]], params, config)
        self.assertAlmostEqual(rows[0][2][tokenizer.encode('e')[0]],
                               microgpt.softmax(logits)[tokenizer.encode('e')[0]].data)

    def test_the_first_main_direction_carries_at_least_the_variance_of_the_second(self):
        train_docs, tokenizer, config, params = names_setup()
        with efficiency():
            microgpt.train(train_docs, tokenizer, params, config, 100, 0.01)
        rows = [[w.data for w in row] for row in params['wte']]
        points = microgpt.main_directions(rows)
        first = statistics.pvariance([x for x, _ in points])
        second = statistics.pvariance([y for _, y in points])
        self.assertGreaterEqual(first, second)
        total = sum(statistics.pvariance(column) for column in zip(*rows))
        self.assertLess(first + second, total + 1e-9)  # two directions of sixteen
        self.assertGreater(first, total / 16)  # more than an average direction's share
        self.assertAlmostEqual(sum(x * y for x, y in points), 0.0, places=6)  # at right angles


class TestNothingWithoutHtml(CliTest):
    def test_a_run_without_html_writes_no_file(self):
        self.ok(*self.base, '--steps', '5', '--explain', 'ann')
        self.assertEqual(os.listdir(self.dir), ['docs.txt'])

    def test_html_is_checked_before_training_and_never_overwrites_a_file_it_did_not_write(self):
        notes = self.path('notes.html', '<p>mine</p>\n')
        result = self.fails(*self.base, '--html', notes, mentions='not a file that --html wrote')
        self.assertEqual(result.stdout, '')
        with open(notes) as f:
            self.assertEqual(f.read(), '<p>mine</p>\n')
        page = self.path('page.html')
        self.ok(*self.base, '--steps', '3', '--html', page)
        self.ok(*self.base, '--steps', '4', '--html', page)  # one it wrote: written again


def png_pixels_vary(path):  # whether a PNG holds more than one colour (zlib: the stdlib's)
    with open(path, 'rb') as f:
        data = f.read()
    chunks = []
    at = 8
    while at < len(data):
        length, kind = struct.unpack('>I4s', data[at:at + 8])
        if kind == b'IDAT':
            chunks.append(data[at + 8:at + 8 + length])
        at += 12 + length
    return len(set(zlib.decompress(b''.join(chunks)))) > 16


@unittest.skipUnless(BROWSER or REQUIRED, 'no chromium here to open the page in: '
                                          'apt-get install -y chromium (CI installs it)')
class TestInARealBrowser(PageTest):
    def chromium(self, *flags):
        profile = tempfile.TemporaryDirectory()
        self.addCleanup(profile.cleanup)
        return subprocess.run(
            [BROWSER, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
             '--no-first-run', '--disable-background-networking', '--disable-component-update',
             '--disable-sync', f'--user-data-dir={profile.name}', '--enable-logging=stderr',
             '--v=0', *flags, 'file://' + self.page_path], capture_output=True, text=True,
            timeout=120)

    def test_the_screenshot_is_not_blank_the_dom_holds_the_pictures_and_the_console_is_quiet(self):
        shot = os.path.join(self.folder.name, 'shot.png')
        result = self.chromium('--window-size=1000,1600', f'--screenshot={shot}')
        self.assertTrue(png_pixels_vary(shot), result.stderr[-2000:])
        self.assertNotIn('CONSOLE', result.stderr)  # no message from the page itself
        dom = self.chromium('--dump-dom').stdout
        self.assertEqual(dom.count('<svg'), 5)  # the loss, 2 heads, what it expects, embeddings
        self.assertGreater(dom.count('<rect'), 40)
        self.assertIn('<h2>The embeddings</h2>', dom)


if __name__ == '__main__':
    unittest.main()
