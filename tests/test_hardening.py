"""The tool never loses a finished run, never overwrites a file it did not write, and ends every
failure in one line: saves, signals, pipes, unprintable output, broken checkpoints, huge sizes."""
import contextlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import unittest

from tests.helpers import ROOT, microgpt
from tests.test_cli import SCRIPT, SMALL, CliTest, run_cli, samples_of


def is_checkpoint(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)['format'] == 'microgpt'


class HardeningTest(CliTest):
    def setUp(self):
        super().setUp()
        self.base = ['--input', self.docs_path, *SMALL, '--samples', '2', '--eval-docs', '20']

    def assert_fails_cleanly(self, *args, mentions, code=2, **kwargs):
        result = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                                timeout=120, **kwargs)
        self.assertEqual(result.returncode, code, f'{args}: {result.stderr}')
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertNotIn('Traceback', result.stderr)
        self.assertIn(mentions, result.stderr)
        return result

    def start(self, *args, **kwargs):  # a run that a test will signal
        return subprocess.Popen([sys.executable, SCRIPT, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **kwargs)

    def wait_for_line(self, proc, text):  # reads stdout until a line has `text`
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if text in line:
                return lines
        self.fail(f'{text!r} never came: {"".join(lines)}')


class TestSavesThatCannotWork(HardeningTest):
    def test_a_save_target_that_cannot_work_is_refused_before_training(self):
        folder = self.path('a_folder')
        os.mkdir(folder)
        a_file = self.path('a_file.txt', 'text\n')
        for target, mentions in [(folder, 'folder'), (self.path('new') + os.sep, 'folder'),
                                 (os.path.join(a_file, 'm.json'), 'folder is missing'),
                                 (self.path('n' * 256 + '.json'), 'too long'),
                                 ('', 'needs a file name')]:
            result = self.assert_fails_cleanly(*self.base, '--steps', '5', '--save', target,
                                               mentions=mentions)
            self.assertNotIn('step', result.stdout)  # refused before any training
        self.assert_fails_cleanly(*self.base, '--load', '', mentions='needs a file name')

    def test_a_save_that_fails_after_training_writes_a_rescue_file_and_exits_1(self):
        # A full disk, simulated: the first replace() of a finished save fails with ENOSPC.
        code = ("import errno, os, runpy, sys; real = os.replace; calls = []\n"
                "def replace(a, b):\n"
                "    calls.append(b)\n"
                "    if len(calls) == 1: raise OSError(errno.ENOSPC, 'No space left on device')\n"
                "    return real(a, b)\n"
                "os.replace = replace\n"
                f"sys.argv = [{SCRIPT!r}] + sys.argv[1:]\n"
                f"runpy.run_path({SCRIPT!r}, run_name='__main__')\n")
        target = self.path('model.json')
        env = dict(os.environ, PYPY_GC_NURSERY='8MB')  # PyPy: no restart, which would lose it
        result = subprocess.run([sys.executable, '-c', code, *self.base, '--steps', '5',
                                 '--save', target], capture_output=True, text=True,
                                cwd=self.dir, env=env, timeout=120)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn('could not save to', result.stderr)
        self.assertIn('No space left on device', result.stderr)
        rescued = [name for name in os.listdir(self.dir) if name.startswith('microgpt-rescued')]
        self.assertEqual(len(rescued), 1, os.listdir(self.dir))
        self.assertIn(rescued[0], result.stderr)
        self.assertEqual(len(samples_of(result.stdout)), 2)  # and the run went on
        self.assertTrue(is_checkpoint(self.path(rescued[0])))
        self.assertFalse(os.path.exists(target))

    def test_a_folder_removed_during_training_still_leaves_the_model_on_disk(self):
        folder = self.path('gone')
        os.mkdir(folder)
        proc = self.start(*self.base, '--steps', '3000', '--save',
                          os.path.join(folder, 'm.json'), cwd=self.dir)
        self.wait_for_line(proc, 'step')
        shutil.rmtree(folder)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 1, err)
        rescued = [name for name in os.listdir(self.dir) if name.startswith('microgpt-rescued')]
        self.assertEqual(len(rescued), 1)
        self.assertTrue(is_checkpoint(self.path(rescued[0])))


class TestNoForeignFileIsOverwritten(HardeningTest):
    def test_save_refuses_the_input_file_the_script_and_any_other_file(self):
        script_copy = self.path('microgpt.py')
        shutil.copy(SCRIPT, script_copy)
        notes = self.path('notes.txt', 'my notes\n')
        for target, mentions in [(self.docs_path, 'the --input file'),
                                 (notes, 'not a microgpt checkpoint')]:
            self.assert_fails_cleanly(*self.base, '--steps', '2', '--save', target,
                                      mentions=mentions)
        result = subprocess.run([sys.executable, script_copy, *self.base, '--steps', '2',
                                 '--save', script_copy], capture_output=True, text=True,
                                timeout=120)
        self.assertEqual(result.returncode, 2)
        self.assertIn('this script', result.stderr)
        with open(notes) as f:
            self.assertEqual(f.read(), 'my notes\n')
        with open(self.docs_path) as f:
            self.assertEqual(len(f.read().split()), 300)
        with open(script_copy) as f, open(SCRIPT) as g:
            self.assertEqual(f.read(), g.read())

    def test_save_over_an_existing_checkpoint_is_allowed(self):
        target = self.path('model.json')
        self.ok(*self.base, '--steps', '2', '--save', target)
        self.ok(*self.base, '--steps', '3', '--save', target)
        with open(target) as f:
            self.assertEqual(json.load(f)['trained_on']['steps'], 3)


class TestOutputThatCannotBePrinted(HardeningTest):
    def test_a_non_utf8_stdout_gets_an_ascii_loss_curve(self):
        env = dict(os.environ, PYTHONIOENCODING='cp1252')
        result = subprocess.run([sys.executable, SCRIPT, *self.base, '--steps', '20'],
                                capture_output=True, env=env, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        curve = [line for line in result.stdout.decode('cp1252').splitlines()
                 if line.startswith('loss curve')]
        self.assertEqual(len(curve), 1)
        self.assertTrue(curve[0].isascii(), curve)

    def test_a_closed_pipe_stops_printing_quietly_and_the_run_still_saves(self):
        target = self.path('model.json')
        command = (f'{sys.executable} {SCRIPT} ' + ' '.join(self.base) +
                   f' --steps 300 --save {target} | head -3')
        result = subprocess.run(['bash', '-c', 'set -o pipefail; ' + command],
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(len(result.stdout.splitlines()), 3)
        self.assertNotIn('Traceback', result.stderr)
        self.assertNotIn('Error', result.stderr)
        self.assertTrue(is_checkpoint(target))

    def test_a_closed_or_full_stdout_still_saves(self):
        for name, stdout in [('closed', None), ('full', '/dev/full')]:
            target = self.path(f'{name}.json')
            args = [sys.executable, SCRIPT, *self.base, '--steps', '3', '--save', target]
            if stdout:
                with open(stdout, 'w') as sink:
                    result = subprocess.run(args, stdout=sink, stderr=subprocess.PIPE,
                                            text=True, timeout=120)
            else:
                result = subprocess.run(['bash', '-c', '"$@" >&-', 'run', *args],
                                        stderr=subprocess.PIPE, text=True, timeout=120)
            self.assertEqual(result.returncode, 0, f'{name}: {result.stderr}')
            self.assertNotIn('Traceback', result.stderr)
            self.assertTrue(is_checkpoint(target), name)


class TestSignals(HardeningTest):
    def test_sigterm_and_sighup_stop_training_save_and_sample_as_ctrl_c_does(self):
        for signum in (signal.SIGTERM, signal.SIGHUP):
            target = self.path(f'{signum.name}.json')
            proc = self.start(*self.base, '--steps', '3000', '--save', target)
            self.wait_for_line(proc, 'step')  # printed every 300 steps
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=60)
            self.assertEqual(proc.returncode, 0, err)
            self.assertRegex(out, rf'interrupted at step \d+ of 3000 \({signum.name}\)')
            self.assertIn('saved the model to', out)
            self.assertEqual(len(samples_of(out)), 2)
            self.assertTrue(is_checkpoint(target))

    def test_ctrl_c_during_the_adam_update_lets_it_finish(self):
        train_docs, tokenizer, config, params = self.tiny_run()
        reference = self.tiny_run()[3]
        real_update = microgpt.adam_update

        def interrupted_update(param_list, *args):
            os.kill(os.getpid(), signal.SIGINT)  # arrives while the update runs
            real_update(param_list, *args)
        microgpt.adam_update = interrupted_update
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                losses = microgpt.train_with_progress(train_docs, tokenizer, params, config, 5,
                                                      0.01)
        finally:
            microgpt.adam_update = real_update
        self.assertEqual(len(losses), 1)  # stopped after the first whole step
        list(microgpt.train(train_docs, tokenizer, reference, config, 1, 0.01))  # same lr at step 0
        self.assertEqual([p.data for p in microgpt.flatten(params)],
                         [p.data for p in microgpt.flatten(reference)])

    def test_training_in_another_thread_runs_without_signal_handlers(self):
        import threading
        train_docs, tokenizer, config, params = self.tiny_run()
        results = []

        def run():
            with contextlib.redirect_stdout(io.StringIO()):
                results.append(microgpt.train_with_progress(train_docs, tokenizer, params,
                                                            config, 3, 0.01))
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        self.assertEqual(len(results[0]), 3)  # signal.signal() would have raised there

    def tiny_run(self):
        import random
        docs = ['anna', 'bob', 'cecilia']
        tokenizer = microgpt.Tokenizer.from_docs(docs)
        config = microgpt.Config(n_embd=8, n_head=2)
        return docs, tokenizer, config, microgpt.init_params(config, tokenizer.vocab_size,
                                                             random.Random(0))

    def test_ctrl_c_during_evaluation_or_sampling_and_a_second_ctrl_c_end_in_one_line(self):
        big = ['--input', os.path.join(ROOT, 'names.txt'), *SMALL, '--val-fraction', '0.9']
        for args, wait_for in [(['--steps', '1', '--eval-docs', '20000'], 'evaluating'),
                               (['--steps', '1', '--eval-docs', '0', '--samples', '1000000'],
                                'sample  1'),
                               (['--steps', '3000', '--eval-docs', '20000'], 'step')]:
            target = self.path('model.json')
            proc = self.start(*big, *args, '--save', target)
            self.wait_for_line(proc, wait_for)
            proc.send_signal(signal.SIGINT)
            if wait_for == 'step':  # the first Ctrl-C stops training; a second one, evaluation
                self.wait_for_line(proc, 'evaluating')
                proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            self.assertEqual(proc.returncode, 128 + signal.SIGINT, err)
            self.assertEqual(err.strip(), 'microgpt.py: error: stopped by SIGINT')
            self.assertTrue(is_checkpoint(target))

    def test_a_malformed_microgpt_args_is_one_line(self):
        code = f"exec(compile(open({SCRIPT!r}).read(), 'cell', 'exec'))"
        env = dict(os.environ, MICROGPT_ARGS='--prompt "unclosed')
        result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                                env=env, cwd=ROOT, timeout=120)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertIn('MICROGPT_ARGS', result.stderr)


class TestNonFiniteLoss(HardeningTest):
    def test_a_non_finite_loss_stops_training_and_keeps_the_good_checkpoint(self):
        target = self.path('model.json')
        self.ok(*self.base, '--steps', '2', '--save', target)
        with open(target) as f:
            good = f.read()
        result = self.assert_fails_cleanly(*self.base, '--steps', '50', '--lr', '1e100',
                                           '--save', target, mentions='try a lower --lr')
        self.assertRegex(result.stderr, r'the loss at step \d+ is (nan|inf)')
        with open(target) as f:
            self.assertEqual(f.read(), good)


class TestCheckpointFiles(HardeningTest):
    def save(self, path):
        docs, tokenizer, config, params = TestSignals.tiny_run(self)
        microgpt.save_checkpoint(path, config, tokenizer, params, {})

    def test_the_temporary_file_is_named_after_the_target_and_a_stale_one_is_removed(self):
        target = self.path('model.json')
        stale = self.path('.model.json.99999999.tmp', 'left by a killed save')
        seen = []
        real_replace = os.replace

        def replace(source, destination):
            seen.append(os.path.basename(source))
            real_replace(source, destination)
        microgpt.os.replace = replace
        try:
            self.save(target)
        finally:
            microgpt.os.replace = real_replace
        self.assertEqual(seen, [f'.model.json.{os.getpid()}.tmp'])
        self.assertFalse(os.path.exists(stale))
        self.assertEqual(sorted(os.listdir(self.dir)), ['docs.txt', 'model.json'])

    def test_a_new_checkpoint_gets_the_umask_mode_and_an_old_one_keeps_its_mode(self):
        target = self.path('model.json')
        old_umask = os.umask(0o022)
        try:
            self.save(target)
            self.assertEqual(stat.S_IMODE(os.stat(target).st_mode), 0o644)
            os.chmod(target, 0o640)
            self.save(target)
            self.assertEqual(stat.S_IMODE(os.stat(target).st_mode), 0o640)
        finally:
            os.umask(old_umask)

    def test_saving_through_a_symlink_writes_the_file_it_names(self):
        real = self.path('real.json')
        self.save(real)
        link = self.path('link.json')
        os.symlink(real, link)
        before = os.stat(real).st_mtime_ns
        time.sleep(0.01)
        self.save(link)
        self.assertTrue(os.path.islink(link))
        self.assertGreater(os.stat(real).st_mtime_ns, before)


class TestBrokenCheckpointsAndSizes(HardeningTest):
    def checkpoint(self, name, text):
        return self.path(name, text)

    def test_broken_checkpoints_are_one_line(self):
        good = self.path('good.json')
        self.ok(*self.base, '--steps', '1', '--save', good)
        with open(good) as f:
            text = f.read()
        saved = json.loads(text)
        huge_int = text.replace(str(saved['weights']['wpe'][0][0]), '1' + '0' * 400, 1)
        surrogate = json.dumps(dict(saved, chars='\ud800' + saved['chars'][1:]))
        huge = json.loads(text)
        huge['weights']['wpe'][0][0] = 1e200
        nested = '{"format": "microgpt", "x": ' + '[' * 100000 + ']' * 100000 + '}'
        too_big = json.loads(text)
        too_big['config']['n_layer'] = 10 ** 7
        os.mkfifo(self.path('fifo.json'))
        sparse = self.path('sparse.json')
        with open(sparse, 'wb') as f:
            f.truncate(500 * 2 ** 20)  # 500 MB of zeros that take no disk
        for path, mentions in [(self.path('int.json', huge_int), 'finite'),
                               (self.path('surrogate.json', surrogate), 'chars'),
                               (self.path('huge.json', json.dumps(huge)), 'finite'),
                               (self.path('nested.json', nested), 'cannot be read'),
                               (self.path('big.json', json.dumps(too_big)), '50,000,000'),
                               ('/dev/urandom', 'regular file'),
                               (self.path('fifo.json'), 'regular file'),
                               (sparse, 'not a microgpt checkpoint')]:
            start = time.perf_counter()
            self.assert_fails_cleanly('--input', self.docs_path, '--steps', '0', '--load', path,
                                      mentions=mentions)
            self.assertLess(time.perf_counter() - start, 10, path)

    def test_inputs_that_are_not_regular_files_and_models_too_big_are_one_line(self):
        os.mkfifo(self.path('fifo.txt'))
        for path in (self.path('fifo.txt'), '/dev/zero'):
            self.assert_fails_cleanly('--input', path, mentions='not a regular file')
        for flag, value in (('--n-embd', '100000'), ('--block-size', str(10 ** 9))):
            self.assert_fails_cleanly('--input', self.docs_path, flag, value,
                                      mentions='50,000,000')

    def test_a_shape_error_names_the_first_mismatch_only(self):
        good = self.path('good.json')
        self.ok(*self.base, '--steps', '1', '--save', good)
        with open(good) as f:
            saved = json.load(f)
        saved['weights']['layer0.mlp_fc1'].pop()
        result = self.assert_fails_cleanly('--input', self.docs_path, '--load',
                                           self.path('bad.json', json.dumps(saved)),
                                           mentions='layer0.mlp_fc1')
        self.assertLess(len(result.stderr), 200)


class TestNewcomerFriction(HardeningTest):
    def test_evaluation_is_announced_sized_by_eval_docs_and_off_for_load_with_steps_0(self):
        target = self.path('model.json')
        out = self.ok(*self.base[:-2], '--steps', '2', '--eval-docs', '7', '--save', target)
        self.assertIn('evaluating on 7 held-out and 7 training documents...', out)
        out = self.ok('--input', self.docs_path, '--load', target, '--steps', '0')
        self.assertNotIn('evaluating', out)
        self.assertEqual(len(samples_of(out)), 20)
        out = self.ok(*self.base[:-2], '--steps', '2', '--eval-docs', '0')
        self.assertNotIn('evaluating', out)

    def test_a_model_loaded_with_another_seed_warns_that_held_out_may_not_be(self):
        target = self.path('model.json')
        self.ok(*self.base, '--steps', '2', '--save', target)
        out = self.ok('--input', self.docs_path, '--load', target, '--steps', '0',
                      '--eval-docs', '10', '--seed', '7')
        self.assertIn("warning: ", out)
        self.assertIn("'seed': 42", out)
        self.assertIn('loss on possibly seen docs', out)

    def test_a_loaded_model_without_its_input_names_both_files(self):
        target = self.path('model.json')
        self.ok('--input', self.path('few.txt', 'abc\nbca\n'), *SMALL, '--steps', '1',
                '--save', target)
        result = self.assert_fails_cleanly('--load', target, mentions='--input', cwd=ROOT)
        self.assertIn(target, result.stderr)
        self.assertIn('names.txt', result.stderr)

    def test_names_txt_is_the_working_directorys_in_a_notebook_and_an_explicit_path_is_exact(self):
        self.path('names.txt', 'ann\nbo\ncy\n')
        code = f"exec(compile(open({SCRIPT!r}).read(), 'cell', 'exec'))"  # no __file__
        env = dict(os.environ, MICROGPT_ARGS='--steps 1 --samples 1 ' + ' '.join(SMALL))
        result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                                env=env, cwd=self.dir, timeout=120)
        self.assertIn('dataset: 3 documents in names.txt', result.stdout + result.stderr)
        out = subprocess.run([sys.executable, SCRIPT, '--input', 'names.txt', '--steps', '1',
                              '--samples', '0', *SMALL], capture_output=True, text=True,
                             cwd=self.dir, timeout=120).stdout
        self.assertIn('dataset: 3 documents in names.txt', out)

    def test_ipython_run_with_a_file_takes_its_flags_from_the_command_line(self):
        code = ("import sys, types, runpy; sys.modules['IPython'] = types.ModuleType('IPython'); "
                f"sys.argv = [{SCRIPT!r}, '--steps', '3', '--samples', '1', '--input', "
                f"{self.docs_path!r}] + {SMALL!r}; runpy.run_path({SCRIPT!r}, run_name='__main__')")
        result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                                env=dict(os.environ, MICROGPT_ARGS='--steps 9'), timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('step 3/3', result.stdout)

    def test_a_piped_run_prints_progress_at_least_every_30_seconds(self):
        docs, tokenizer, config, params = TestSignals.tiny_run(self)
        clock = iter(range(0, 10 ** 6, 31))  # 31 s pass between two looks at the clock
        real_clock = microgpt.time.perf_counter
        microgpt.time.perf_counter = lambda: next(clock)
        try:
            with contextlib.redirect_stdout(io.StringIO()) as out:
                microgpt.train_with_progress(docs, tokenizer, params, config, 25, 0.01)
        finally:
            microgpt.time.perf_counter = real_clock
        self.assertEqual(len(re.findall(r'^step +\d+/25 ', out.getvalue(), re.M)), 25)
        self.assertIn('ETA 12m24s', out.getvalue())  # 24 steps left at 31 s each

    def test_on_a_terminal_the_progress_line_clears_what_a_longer_one_left(self):
        import pty
        leader, follower = pty.openpty()
        proc = subprocess.Popen([sys.executable, SCRIPT, *self.base, '--steps', '30'],
                                stdout=follower, stderr=subprocess.PIPE)
        os.close(follower)
        output = b''
        with contextlib.suppress(OSError):  # EIO once the child has gone
            while True:
                chunk = os.read(leader, 65536)
                if not chunk:
                    break
                output += chunk
        proc.wait(timeout=60)
        proc.stderr.close()
        os.close(leader)
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(output.count(b'\r') - output.count(b'\r\n'), 30)  # one per step
        self.assertEqual(output.count(b'\033[K'), 30)

    def test_durations_read_as_seconds_minutes_and_hours(self):
        self.assertEqual(microgpt.duration(7.25), '7.2s')
        self.assertEqual(microgpt.duration(1167), '19m27s')
        self.assertEqual(microgpt.duration(7500), '2h05m')

    def test_no_held_out_docs_no_samples_and_empty_samples_say_so_plainly(self):
        out = self.ok(*self.base, '--steps', '1', '--val-fraction', '0', '--samples', '0')
        self.assertIn('no held-out documents (--val-fraction 0)', out)
        self.assertNotIn('samples are new', out)
        code, out, err = run_cli('--input', self.path('ab.txt', 'a\nb\n'), *SMALL, '--steps', '0',
                                 '--samples', '40', '--temperature', '5')
        self.assertIn('(empty)', out)

    def test_long_samples_are_not_padded_to_block_size(self):
        out = self.ok(*self.base, '--steps', '0', '--block-size', '300')
        self.assertTrue(all(len(line) < 330 for line in out.splitlines()))
        self.assertTrue(all(not line.endswith(' ') for line in out.splitlines()))

    def test_help_says_what_each_size_is_and_what_prompt_defaults_to(self):
        out = ' '.join(self.ok('--help').split())
        self.assertIn('width of the vector that represents each token', out)
        self.assertIn('transformer blocks', out)
        self.assertNotIn('(default: )', out)
        self.assertIn('50,000,000', out)


if __name__ == '__main__':
    unittest.main()
