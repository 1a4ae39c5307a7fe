"""Shared by the tests: import microgpt.py from the repository root, and finite differences."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import microgpt  # noqa: E402  (needs the path above)

NAMES = os.path.join(ROOT, 'names.txt')


def numerical_grad(f, x, h=1e-6):
    """Central finite difference of f at x: (f(x + h) - f(x - h)) / 2h."""
    return (f(x + h) - f(x - h)) / (2 * h)


def assert_close(test, analytic, numeric, rel=1e-6, floor=1e-8, what=''):
    test.assertLessEqual(abs(analytic - numeric), rel * max(abs(analytic), abs(numeric)) + floor,
                         f'{what}: autograd {analytic!r} vs finite differences {numeric!r}')
