"""tests/bench.py runs as README shows it: an interpreter that is not on the machine is skipped
with a note, and the benchmark goes on with the others."""
import subprocess
import sys
import unittest

from tests.helpers import ROOT


class TestBench(unittest.TestCase):
    def test_a_missing_interpreter_is_skipped_with_a_note_and_the_others_are_measured(self):
        result = subprocess.run([sys.executable, 'tests/bench.py', '--python', sys.executable,
                                 'python2.1', '--steps', '3', '--reference-steps', '1',
                                 '--repeats', '1', '--eval-docs', '3'], capture_output=True,
                                text=True, cwd=ROOT,
                                timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('bench.py: python2.1 is not on this machine (or does not run): skipped',
                      result.stderr)
        self.assertRegex(result.stdout, r'\nC?P\w+ \d\.\d+\.\d+ +\d+\.\d\d ')  # a measured row


if __name__ == '__main__':
    unittest.main()
