"""Stops and output: Ctrl-C or SIGTERM in training keeps what was learned and the run goes on; a
stop at any later moment ends it in one line; output that cannot be shown is never a traceback."""
import json
import os
import re
import signal
import subprocess
import sys
import unittest

from tests.helpers import NAMES, SCRIPT, SMALL, CliTest, samples_of


class TestStops(CliTest):
    def start(self, *args):  # a run that a test signals once it has printed what the test waits for
        return subprocess.Popen([sys.executable, SCRIPT, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.dir)

    def wait_for(self, proc, text):
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if text in line:
                return lines
        self.fail(f'{text!r} never came: {"".join(lines)}')

    def test_ctrl_c_or_sigterm_in_training_keeps_what_was_learned_then_saves_and_samples(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(signum.name):
                target = self.path(f'{signum.name}.json')
                proc = self.start('--input', NAMES, *SMALL, '--steps', '100000', '--save',
                                  target, '--samples', '2', '--eval-docs', '10')
                self.wait_for(proc, 'samples after step 1 ')
                proc.send_signal(signum)
                out, err = proc.communicate(timeout=60)
                self.assertEqual(proc.returncode, 0, err)
                self.assertEqual(err, '')
                stopped = rf'stopped after step (\d+) by {signum.name}: keeping what it learned'
                self.assertRegex(out, stopped)
                self.assertIn('saved the model to', out)
                self.assertIn('loss on 10 held-out docs', out)
                self.assertEqual(len(samples_of(out)), 2)
                with open(target) as f:
                    steps = json.load(f)['trained_on'][0]['steps']
                self.assertTrue(0 < steps < 100000, steps)

    def test_a_stop_after_training_ends_the_run_in_one_line_and_keeps_the_saved_model(self):
        target = self.path('model.json')
        proc = self.start('--input', NAMES, *SMALL, '--steps', '2', '--val-fraction', '0.9',
                          '--eval-docs', '30000', '--save', target)
        self.wait_for(proc, 'saved the model')
        proc.send_signal(signal.SIGINT)  # during the evaluation of 29,656 documents
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 128 + signal.SIGINT)
        self.assertEqual(err, 'microgpt.py: error: stopped by SIGINT\n')
        self.assertNotIn('loss on', out)
        with open(target) as f:
            self.assertEqual(json.load(f)['trained_on'][0]['steps'], 2)

    def test_a_shell_that_ignores_ctrl_c_in_the_background_does_not_stop_it_from_working(self):
        proc = subprocess.Popen([sys.executable, SCRIPT, '--input', NAMES, *SMALL, '--steps',
                                 '100000', '--samples', '1', '--eval-docs', '5'],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        self.wait_for(proc, 'samples after step 1 ')
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn('stopped after step', out)


    def test_ctrl_c_before_training_ends_the_run_in_one_line(self):
        big = self.path('big.txt', 'abcdefghij\n' * 3_000_000)  # a second or more to read
        proc = self.start('--input', big, *SMALL)
        status = f'/proc/{proc.pid}/status'
        if not os.path.exists(status):
            self.skipTest('no /proc to see when the run has its handlers in place')
        while not handles(status, signal.SIGTERM):  # its handlers are in: it is reading input
            self.assertIsNone(proc.poll())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(err, 'microgpt.py: error: stopped by SIGINT\n')
        self.assertEqual(proc.returncode, 128 + signal.SIGINT)
        self.assertEqual(out, '')

    def test_after_the_run_python_i_has_pythons_own_signal_handling_again(self):
        check = ('import signal\nprint('
                 'signal.getsignal(signal.SIGINT) is signal.default_int_handler,'
                 ' signal.getsignal(signal.SIGTERM) is signal.SIG_DFL,'
                 ' signal.getsignal(signal.SIGPIPE) is signal.SIG_IGN)\n')
        result = subprocess.run([sys.executable, '-i', SCRIPT, *self.base, '--steps', '2'],
                                input=check, capture_output=True, text=True, timeout=120)
        self.assertIn('True True True', result.stdout)


def handles(status, signum):  # whether the process of /proc/PID/status has a handler for signum
    with open(status) as f:
        caught = int(re.search(r'SigCgt:\s*([0-9a-f]+)', f.read())[1], 16)
    return bool(caught >> (signum - 1) & 1)


class TestOutputThatCannotBeShown(CliTest):
    def test_a_closed_pipe_ends_the_output_quietly(self):
        command = f'{sys.executable} {SCRIPT} ' + ' '.join(self.base) + ' --steps 300 | head -2'
        result = subprocess.run(['bash', '-c', command], capture_output=True, text=True,
                                cwd=self.dir, timeout=120)
        self.assertEqual(len(result.stdout.splitlines()), 2)
        self.assertEqual(result.stderr, '')

    def test_an_output_encoding_without_the_arrow_gets_a_question_mark_not_a_traceback(self):
        env = dict(os.environ, PYTHONIOENCODING='ascii')
        result = subprocess.run([sys.executable, SCRIPT, *self.base, '--steps', '3', '--explain',
                                 'ab'], capture_output=True, env=env, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, b'')
        self.assertIn(b'a ? b  p ', result.stdout)


if __name__ == '__main__':
    unittest.main()
