"""Checkpoints: what --save writes --load reads, and goes on from as if the run had never stopped;
--save is checked before training, writes only over a file that --save wrote and leaves nothing
behind; a checkpoint is checked in full; what it says it learned from stays true."""
import contextlib
import io
import json
import os
import random
import re
import signal
import stat
import subprocess
import sys
import unittest
from unittest import mock

from tests.helpers import SCRIPT, SMALL, CliTest, microgpt, samples_of

EVALUATION = re.compile('loss on .*')


def a_checkpoint():  # the text that --save writes for a tiny model
    config = microgpt.Config(n_embd=8, n_head=2)
    params = microgpt.init_params(config, 3, random.Random(0))
    adam = microgpt.adam_state(len(microgpt.flatten(params)))
    return json.dumps(microgpt.checkpoint_of(config, 'ab', params, adam, 10, []))


class CheckpointTest(CliTest):
    def saved(self, *extra, name='model.json'):
        path = self.path(name)
        self.ok(*self.base, '--steps', '30', '--save', path, *extra)
        return path

    def variant(self, name, change):  # a copy of a good checkpoint, changed
        with open(self.saved()) as f:
            checkpoint = json.load(f)
        change(checkpoint)
        return self.path(name, json.dumps(checkpoint))

    def trained_on(self, path):
        with open(path) as f:
            return json.load(f)['trained_on']


class TestSaveThenLoad(CheckpointTest):
    def test_load_with_steps_0_reproduces_the_evaluation_and_the_samples(self):
        path = self.path('model.json')
        trained = self.ok(*self.base, '--steps', '30', '--save', path)
        loaded = self.ok('--input', self.docs_path, '--load', path, '--steps', '0',
                         '--eval-docs', '20', '--samples', '3')
        self.assertEqual(len(EVALUATION.findall(trained)), 1)
        self.assertEqual(EVALUATION.findall(trained), EVALUATION.findall(loaded))
        self.assertEqual(samples_of(trained), samples_of(loaded))
        self.assertNotIn('was trained on', loaded)  # trained on this very input
        self.assertIn(f'block_size=8), from {path} at step 30\n', loaded)
        with open(path) as f:
            text = f.read()
        self.assertTrue(text.startswith(microgpt.CHECKPOINT_START))
        checkpoint = json.loads(text)
        self.assertEqual(checkpoint['config'], {'n_embd': 8, 'n_head': 2, 'n_layer': 1,
                                                'block_size': 8})
        self.assertEqual(checkpoint['trained_on'], [{'input': 'docs.txt', 'documents': 300,
                                                     'steps': 30}])
        self.assertEqual(checkpoint['run'], {'steps': 30, 'lr': 0.01, 'seed': 42,
                                             'val_fraction': 0.1})
        self.assertEqual(checkpoint['adam']['step'], 30)

    def test_a_run_stopped_by_ctrl_c_and_resumed_ends_as_one_that_never_stopped(self):
        whole = self.ok(*self.base, '--steps', '300', '--save', self.path('whole.json'))
        target = self.path('stopped.json')
        proc = subprocess.Popen([sys.executable, SCRIPT, *self.base, '--steps', '300', '--save',
                                 target], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=self.dir)
        for line in proc.stdout:
            if line.startswith('samples after step 1 '):
                proc.send_signal(signal.SIGINT)
                break
        first_part = line + proc.communicate(timeout=60)[0]
        self.assertEqual(proc.returncode, 0)
        stopped_at = int(re.search(r'stopped after step (\d+) by SIGINT', first_part)[1])
        self.assertLess(stopped_at, 300)
        resumed = self.ok('--input', self.docs_path, '--load', target, '--save', target,
                          '--eval-docs', '20', '--samples', '3')
        self.assertIn(f'step {stopped_at + 1}/300 ' if (stopped_at + 1) % 30 == 0 else
                      'step 300/300 ', resumed)
        self.assertEqual(EVALUATION.findall(resumed), EVALUATION.findall(whole))
        self.assertEqual(samples_of(resumed), samples_of(whole))
        with open(self.path('whole.json')) as f:
            whole_weights = json.load(f)['weights']
        with open(target) as f:
            self.assertEqual(json.load(f)['weights'], whole_weights)  # to the last bit
        self.assertEqual(self.trained_on(target), [
            {'input': 'docs.txt', 'documents': 300, 'steps': stopped_at},
            {'input': 'docs.txt', 'documents': 300, 'steps': 300 - stopped_at}])

    def test_load_with_more_steps_goes_on_from_the_step_it_reached(self):
        path = self.saved()
        resumed = self.ok('--input', self.docs_path, '--load', path, '--steps', '40', '--save',
                          path)
        self.assertIn('step 32/40 ', resumed)  # the first report after step 30
        self.assertNotIn('samples after step 1 ', resumed)
        self.assertEqual([run['steps'] for run in self.trained_on(path)], [30, 10])

    def test_what_the_checkpoint_learned_from_stays_true(self):
        path = self.saved()
        other = self.path('other.txt', 'anna\nbob\ncecilia\ndave\n')
        out = self.ok('--input', other, '--load', path, '--steps', '0', '--samples', '1',
                      '--save', path)  # loaded and saved on other.txt, but not trained on it
        self.assertIn(f'note: {path} was trained for 30 steps on docs.txt (300 documents) too', out)
        self.assertEqual(self.trained_on(path), [{'input': 'docs.txt', 'documents': 300,
                                                  'steps': 30}])
        self.assertNotIn('was trained on', self.ok('--input', self.docs_path, '--load', path,
                                                   '--steps', '0', '--samples', '1'))
        self.ok('--input', other, '--load', path, '--steps', '35', '--save', path)
        self.assertEqual(self.trained_on(path), [
            {'input': 'docs.txt', 'documents': 300, 'steps': 30},
            {'input': 'other.txt', 'documents': 4, 'steps': 5}])

    def test_load_goes_on_with_the_saved_runs_steps_lr_seed_and_split_unless_given(self):
        path = self.path('run.json')
        flags = ['--input', self.docs_path, *SMALL, '--eval-docs', '20', '--samples', '3']
        whole = self.ok(*flags, '--steps', '40', '--lr', '0.03', '--seed', '7',
                        '--val-fraction', '0.2')
        self.ok(*flags, '--steps', '40', '--lr', '0.03', '--seed', '7', '--val-fraction', '0.2',
                '--save', path)
        again = self.ok('--input', self.docs_path, '--load', path, '--eval-docs', '20',
                        '--samples', '3')  # nothing repeated: the saved run's own settings
        self.assertIn('note: the run is at step 40 of 40: a larger --steps goes on', again)
        self.assertEqual(EVALUATION.findall(again), EVALUATION.findall(whole))
        self.assertEqual(samples_of(again), samples_of(whole))
        self.assertIn('240 + 60 distinct', again)  # the saved run's held-out share

    def test_a_checkpoint_of_the_previous_version_is_refused_in_one_line(self):
        old = self.variant('old.json', lambda c: c.update(version=2))
        self.fails('--input', self.docs_path, '--load', old, mentions='earlier microgpt.py')


class TestSavingLeavesNothingBehind(CheckpointTest):
    def test_a_save_cut_short_leaves_the_old_file_and_no_scratch_file(self):
        path = self.saved()
        with open(path) as f:
            before = f.read()
        for where in ('copymode', 'replace'):  # once the new file is written, and at the rename
            module = microgpt.shutil if where == 'copymode' else microgpt.os
            with self.subTest(where), mock.patch.object(module, where,
                                                        side_effect=KeyboardInterrupt):
                with self.assertRaises(KeyboardInterrupt):
                    microgpt.write(path, a_checkpoint())
            with open(path) as f:
                self.assertEqual(f.read(), before)
            self.assertEqual(sorted(os.listdir(self.dir)), ['docs.txt', 'model.json'])

    def test_the_save_goes_to_a_new_file_in_the_same_folder_then_is_renamed_over_the_target(self):
        path = self.saved()
        real_replace = os.replace
        seen = []

        def replace(source, target):
            seen.append((os.path.dirname(source), os.stat(source).st_ino))
            real_replace(source, target)
        before = os.stat(path).st_ino
        with mock.patch.object(microgpt.os, 'replace', side_effect=replace):
            microgpt.write(path, a_checkpoint())
        self.assertEqual(len(seen), 1)
        self.assertEqual(seen[0][0], self.dir)
        self.assertNotEqual(seen[0][1], before)  # a new file, not the old one rewritten
        self.assertEqual(os.stat(path).st_ino, seen[0][1])

    def test_a_new_checkpoint_gets_a_new_files_mode_and_one_saved_again_keeps_its_own(self):
        umask = os.umask(0o022)
        try:
            path = self.saved()
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)
            os.chmod(path, 0o640)
            self.ok(*self.base, '--steps', '3', '--save', path)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)
        finally:
            os.umask(umask)


class TestSaveIsCheckedBeforeTraining(CheckpointTest):
    def test_a_target_that_cannot_work_is_refused_before_any_training(self):
        folder = self.path('a_folder')
        os.mkdir(folder)
        package = self.path('package.json', '{"name": "x", "description": "for microgpt", '
                                            '"format": "microgpt", "version": 2}\n')
        notes = self.path('notes.txt', 'mine\n')
        for target in (folder, os.path.join(self.dir, 'missing', 'm.json'), package, notes,
                       self.docs_path, 'nodir/', os.path.join(self.docs_path, 'm.json'),
                       'x' * 300 + '.json'):
            result = self.fails(*self.base, '--steps', '5', '--save', target, mentions='--save')
            self.assertEqual(result.stdout, '')
        with open(package) as f:
            self.assertIn('for microgpt', f.read())  # a file --save did not write stays as it is
        with open(notes) as f:
            self.assertEqual(f.read(), 'mine\n')
        self.assertEqual(sorted(os.listdir(self.dir)), ['a_folder', 'docs.txt', 'notes.txt',
                                                        'package.json'])

    def test_a_folder_that_can_be_written_but_not_searched_is_refused(self):
        if os.geteuid() == 0:
            self.skipTest('root writes and searches anywhere')
        folder = self.path('locked')
        os.mkdir(folder, 0o300 - 0o100)
        self.fails(*self.base, '--save', os.path.join(folder, 'm.json'), mentions='--save')

    def test_a_checkpoint_that_save_wrote_is_overwritten(self):
        path = self.saved()
        self.ok(*self.base, '--steps', '3', '--save', path)
        self.assertEqual(self.trained_on(path)[0]['steps'], 3)


class TestDivergedTrainingSavesNothing(CheckpointTest):
    def test_a_learning_rate_that_diverges_stops_at_once_in_one_line_and_saves_nothing(self):
        path = self.saved()
        with open(path) as f:
            good = f.read()
        result = self.fails(*self.base, '--steps', '50', '--lr', '1e100', '--save', path,
                            mentions='try --lr below 1e+100')
        self.assertRegex(result.stderr, r'diverged at step \d+ ')
        self.assertNotIn('step 5/50', result.stdout)  # stopped at once, not at the end
        with open(path) as f:
            self.assertEqual(f.read(), good)

    def test_part_1_whose_probability_rounds_to_0_stops_in_one_line_too(self):
        self.fails('--input', self.docs_path, '--steps', '60', '--lr', '0.5', '--reference',
                   '--eval-docs', '0', '--samples', '0', mentions='try --lr below 0.5')

    def test_weights_that_are_not_finite_are_never_written_even_after_a_finite_loss(self):
        with open(microgpt.__file__, encoding='utf-8') as f:
            source = f.read()
        last_line = "        adam['step'] = step + 1\n"  # Part 1's train: a weight made infinite
        self.assertEqual(source.count(last_line), 1)
        copy = self.path('microgpt.py', source.replace(
            last_line, '        param_list[0].data = math.inf if step == 2 else 0.0\n' + last_line))
        target = self.path('inf.json')
        result = subprocess.run([sys.executable, copy, *self.base, '--steps', '3', '--save',
                                 target], capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn('diverged at step 3', result.stderr)
        self.assertIn('step 3/3 | loss', result.stdout)  # whose loss was finite
        self.assertFalse(os.path.exists(target))


class TestAModelWhoseProbabilitiesRoundTo0(CheckpointTest):
    def test_it_explains_evaluates_and_samples_with_an_infinite_surprise_not_a_traceback(self):
        path = self.path('lr100.json')
        self.ok(*self.base, '--steps', '1', '--lr', '100', '--save', path)
        for flags in ((), ('--reference',)):
            out = self.ok('--input', self.docs_path, '--load', path, '--steps', '0', '--explain',
                          'emma', '--samples', '3', *flags)
            self.assertIn('surprise   inf', out)  # an impossible letter, shown so
            self.assertEqual(len(samples_of(out)), 3)
            self.assertRegex(out, r'loss on 30 held-out docs (\d+\.\d{4}|inf);')

    def test_weights_that_would_overflow_a_float_are_refused_at_load_in_one_line(self):
        for weight in (1e308, -1e308, 1e51):
            path = self.variant(f'{weight}.json', lambda c: [
                row.__setitem__(0, weight) for row in c['weights']['lm_head']])
            self.fails('--input', self.docs_path, '--load', path, mentions='beyond 1e+50')
        within = self.variant('1e50.json', lambda c: c['weights']['wte'][0].__setitem__(0, 1e50))
        self.ok('--input', self.docs_path, '--load', within, '--steps', '0', '--samples', '3')


class TestCheckpointsAreCheckedInFull(CheckpointTest):
    def test_broken_checkpoints_end_in_one_line(self):
        cases = [
            (self.path('missing.json'), 'no checkpoint that --save wrote is there'),
            (self.path('other.json', '{"format": "other"}'), 'no checkpoint that --save wrote'),
            (self.path('cut.json', microgpt.CHECKPOINT_START + '3, "con'), 'cannot be read'),
            (self.variant('config.json', lambda c: c['config'].update(n_head=3)),
             'n_head dividing n_embd'),
            (self.variant('float.json', lambda c: c['config'].update(n_embd=8.0)), 'config'),
            (self.variant('chars.json', lambda c: c.update(chars=None)), 'not in full'),
            (self.variant('rows.json', lambda c: c['weights']['wte'].pop()), 'not in full'),
            (self.variant('row.json', lambda c: c['weights']['lm_head'][0].pop()), 'not in full'),
            (self.variant('gone.json', lambda c: c['weights'].pop('wpe')), 'not in full'),
            (self.variant('inf.json', lambda c: c['weights']['wpe'][0].__setitem__(0, 1e999)),
             'beyond 1e+50'),
            (self.variant('text.json', lambda c: c['weights']['wpe'][0].__setitem__(0, '1')),
             'not in full'),
            (self.variant('m.json', lambda c: c['adam']['m'].pop()), 'not in full'),
            (self.variant('v.json', lambda c: c['adam']['v'].__setitem__(3, -1e999)),
             'beyond 1e+50'),
            (self.variant('steps.json', lambda c: c['trained_on'][0].update(steps=None)),
             'not in full'),
            (self.variant('untrained.json', lambda c: c.pop('trained_on')), 'trained_on'),
        ]
        for path, mentions in cases:
            with self.subTest(os.path.basename(path)):
                self.assert_load_fails(path, mentions)
        self.fails('--input', self.docs_path, '--steps', '0', '--load', cases[3][0],
                   mentions='n_head dividing n_embd')  # and so it goes in a run

    def assert_load_fails(self, path, mentions):  # in this process: one line on stderr, exit 2
        with self.assertRaises(SystemExit) as stop, \
                contextlib.redirect_stderr(io.StringIO()) as err:
            microgpt.load_checkpoint(path)
        self.assertEqual(stop.exception.code, 2)
        self.assertEqual(len(err.getvalue().splitlines()), 1, err.getvalue())
        self.assertIn(mentions, err.getvalue())

    def test_a_small_checkpoint_describing_a_huge_model_is_refused_at_once(self):
        text = (microgpt.CHECKPOINT_START + '3, "config": {"n_embd": 16, "n_head": 4, '
                '"n_layer": 4000000, "block_size": 16}, "chars": "ab", "trained_on": [], '
                '"steps": 1000, "adam": {}, "weights": {}}')
        self.fails('--input', self.docs_path, '--load', self.path('huge.json', text),
                   mentions='parameters at most')

    def test_size_flags_with_load_and_an_input_outside_its_vocabulary_end_in_one_line(self):
        path = self.saved()
        self.fails('--input', self.docs_path, '--load', path, '--n-embd', '16',
                   mentions='a checkpoint has its own size')
        accented = self.path('accented.txt', 'zoë\n')
        self.fails('--input', accented, '--load', path, mentions="'ë' is not in the vocabulary")


if __name__ == '__main__':
    unittest.main()
