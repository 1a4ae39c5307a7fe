"""Shared by the tests: microgpt.py imported from the repository root, finite differences, and a
way to run the script on a small file of names."""
import contextlib
import os
import random
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import microgpt  # noqa: E402  (needs the path above)

NAMES = os.path.join(ROOT, 'names.txt')
SCRIPT = os.path.join(ROOT, 'microgpt.py')
SMALL = ['--n-embd', '8', '--n-head', '2', '--block-size', '8']


def numerical_grad(f, x, h=1e-6):
    """Central finite difference of f at x: (f(x + h) - f(x - h)) / 2h."""
    return (f(x + h) - f(x - h)) / (2 * h)


def assert_close(test, analytic, numeric, rel=1e-6, floor=1e-8, what=''):
    test.assertLessEqual(abs(analytic - numeric), rel * max(abs(analytic), abs(numeric)) + floor,
                         f'{what}: autograd {analytic!r} vs finite differences {numeric!r}')


@contextlib.contextmanager
def efficiency(on=True):
    """`with efficiency():` Part 2 in place, all of it, as the unedited file runs (else an
    AssertionError: PROVEN is stale). efficiency(False): Part 1 alone, as --reference runs."""
    with microgpt.efficiency(on) as notes:
        if on:
            stand_ins = [getattr(microgpt, name) for name in microgpt.STAND_INS]
            assert stand_ins == [stand_in for stand_in, _ in microgpt.STAND_INS.values()], notes
        yield


def names_setup(seed=42, config=None):
    """names.txt as the default run prepares it: shuffled, split, a tokenizer, fresh weights."""
    docs = microgpt.load_docs(NAMES)
    train_docs, val_docs = microgpt.split_docs(docs, seed, 0.1)
    tokenizer = microgpt.Tokenizer.from_docs(docs)
    config = config or microgpt.Config()
    params = microgpt.init_params(config, tokenizer.vocab_size, random.Random(seed))
    return train_docs, tokenizer, config, params


def samples_of(stdout):  # [(text, status, surprise), ...] from the sample lines
    return [(text, status, float(surprise)) for status, surprise, text in re.findall(
        r'^sample +\d+  (trained on|real, unseen|new|cut) +surprise (\d+\.\d\d|inf)  (.*)$',
        stdout, re.M)]


class CliTest(unittest.TestCase):
    """Runs microgpt.py in a fresh folder that holds docs.txt, the first 300 names of names.txt."""
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        with open(NAMES) as f:
            names = [next(f).strip() for _ in range(300)]
        self.docs_path = self.path('docs.txt', '\n'.join(names) + '\n')
        self.base = ['--input', self.docs_path, *SMALL, '--eval-docs', '20', '--samples', '3']

    def path(self, name, text=None):
        path = os.path.join(self.dir, name)
        if text is not None:
            with open(path, 'w', encoding='utf-8') as f:
                f.write(text)
        return path

    def run_cli(self, *args, **kwargs):
        kwargs.setdefault('cwd', self.dir)
        return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                              timeout=120, **kwargs)

    def ok(self, *args, **kwargs):
        result = self.run_cli(*args, **kwargs)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, '')
        return result.stdout

    def fails(self, *args, mentions, code=2, **kwargs):
        """The run ends with one line on stderr that mentions `mentions`, and exit code 2."""
        result = self.run_cli(*args, **kwargs)
        self.assertEqual(result.returncode, code, f'{args}: {result.stderr}')
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertTrue(result.stderr.startswith('microgpt.py: error: '), result.stderr)
        self.assertIn(mentions, result.stderr)
        return result
