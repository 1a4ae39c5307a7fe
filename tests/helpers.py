"""Shared by the tests: import microgpt.py from the repository root, and finite differences."""
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import microgpt  # noqa: E402  (needs the path above)

microgpt.use_efficiency()  # as the tool runs: each of Part 2's stand-ins in place, once checked

NAMES = os.path.join(ROOT, 'names.txt')


def numerical_grad(f, x, h=1e-6):
    """Central finite difference of f at x: (f(x + h) - f(x - h)) / 2h."""
    return (f(x + h) - f(x - h)) / (2 * h)


def assert_close(test, analytic, numeric, rel=1e-6, floor=1e-8, what=''):
    test.assertLessEqual(abs(analytic - numeric), rel * max(abs(analytic), abs(numeric)) + floor,
                         f'{what}: autograd {analytic!r} vs finite differences {numeric!r}')


class efficiency:
    """`with efficiency(False):` runs Part 1 alone (as --reference does); Part 2 is back after."""
    def __init__(self, on):
        self.on = on

    def __enter__(self):
        microgpt.use_efficiency(self.on)

    def __exit__(self, *exception):
        microgpt.use_efficiency(True)


def names_setup(seed=42, config=None):
    """names.txt as the default run prepares it: shuffled, split, a tokenizer, fresh weights."""
    docs = microgpt.load_docs(NAMES)
    train_docs, val_docs = microgpt.split_docs(docs, seed, 0.1)
    tokenizer = microgpt.Tokenizer.from_docs(docs)
    config = config or microgpt.Config()
    params = microgpt.init_params(config, tokenizer.vocab_size, random.Random(seed))
    return train_docs, tokenizer, config, params
