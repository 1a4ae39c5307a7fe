"""Checkpoints: what --save writes --load reads; --save is checked before training and writes only
over a file that --save wrote; a checkpoint is checked in full; a loaded model says where from."""
import contextlib
import io
import json
import os
import random
import re
import stat
import subprocess
import sys
import time
import unittest
from unittest import mock

from tests.helpers import CliTest, microgpt, samples_of


def tiny_model():  # enough of a model to save
    config = microgpt.Config(n_embd=8, n_head=2)
    tokenizer = microgpt.Tokenizer('ab')
    return config, tokenizer, microgpt.init_params(config, tokenizer.vocab_size, random.Random(0))


class CheckpointTest(CliTest):
    def saved(self, *extra):
        path = self.path('model.json')
        self.ok(*self.base, '--steps', '30', '--save', path, *extra)
        return path

    def variant(self, name, change):  # a copy of a good checkpoint, changed
        with open(self.saved()) as f:
            checkpoint = json.load(f)
        change(checkpoint)
        return self.path(name, json.dumps(checkpoint))


class TestSaveThenLoad(CheckpointTest):
    def test_load_with_steps_0_reproduces_the_evaluation_and_the_samples(self):
        path = self.path('model.json')
        trained = self.ok(*self.base, '--steps', '30', '--save', path)
        loaded = self.ok('--input', self.docs_path, '--load', path, '--steps', '0',
                         '--eval-docs', '20', '--samples', '3')
        evaluation = re.compile('loss on .*')
        self.assertEqual(len(evaluation.findall(trained)), 1)
        self.assertEqual(evaluation.findall(trained), evaluation.findall(loaded))
        self.assertEqual(samples_of(trained), samples_of(loaded))
        self.assertNotIn('note:', loaded)  # trained on this very input
        with open(path) as f:
            text = f.read()
        self.assertTrue(text.startswith(microgpt.CHECKPOINT_START))
        checkpoint = json.loads(text)
        self.assertEqual(checkpoint['config'], {'n_embd': 8, 'n_head': 2, 'n_layer': 1,
                                                'block_size': 8})
        self.assertEqual(checkpoint['trained_on'], {'input': 'docs.txt', 'documents': 300,
                                                    'steps': 30})

    def test_load_with_steps_continues_training_and_counts_every_step(self):
        path = self.saved()
        fresh = self.ok(*self.base, '--steps', '5')
        resumed = self.ok('--input', self.docs_path, '--load', path, '--steps', '5', '--save',
                          path)
        first = re.compile(r'after step 1 \(loss (\d\.\d+)\)')
        self.assertLess(float(first.search(resumed)[1]), float(first.search(fresh)[1]))
        with open(path) as f:
            self.assertEqual(json.load(f)['trained_on']['steps'], 35)

    def test_a_loaded_model_trained_on_another_input_says_so_at_the_start(self):
        path = self.saved()
        other = self.path('other.txt', 'anna\nbob\ncecilia\ndave\n')
        out = self.ok('--input', other, '--load', path, '--steps', '0', '--samples', '1')
        lines = out.splitlines()
        self.assertTrue(lines[2].startswith(f'note: {path} was trained on '), lines[:4])
        self.assertIn("'input': 'docs.txt'", lines[2])
        self.assertIn("'input': 'other.txt'", lines[2])

    def test_a_save_cut_short_before_the_rename_leaves_the_old_file_alone(self):
        path = self.saved()
        with open(path) as f:
            before = f.read()
        config, tokenizer, params = tiny_model()
        with mock.patch.object(microgpt.os, 'replace', side_effect=KeyboardInterrupt):
            with self.assertRaises(KeyboardInterrupt):
                microgpt.save_checkpoint(path, config, tokenizer, params, {})
        with open(path) as f:
            self.assertEqual(f.read(), before)

    def test_the_save_goes_to_a_new_file_in_the_same_folder_then_is_renamed_over_the_target(self):
        path = self.saved()
        real_replace = os.replace
        seen = []

        def replace(source, target):
            seen.append((os.path.dirname(source), os.path.exists(source), os.stat(source).st_ino))
            real_replace(source, target)
        config, tokenizer, params = tiny_model()
        before = os.stat(path).st_ino
        with mock.patch.object(microgpt.os, 'replace', side_effect=replace):
            microgpt.save_checkpoint(path, config, tokenizer, params, {})
        self.assertEqual(len(seen), 1)
        self.assertEqual(seen[0][0], self.dir)
        self.assertNotEqual(seen[0][2], before)  # a new file, not the old one rewritten
        self.assertEqual(os.stat(path).st_ino, seen[0][2])


class TestSaveIsCheckedBeforeTraining(CheckpointTest):
    def test_a_target_that_cannot_work_is_refused_before_any_training(self):
        folder = self.path('a_folder')
        os.mkdir(folder)
        package = self.path('package.json', '{"name": "x", "description": "for microgpt", '
                                            '"format": "microgpt", "version": 2}\n')
        notes = self.path('notes.txt', 'mine\n')
        for target in (folder, os.path.join(self.dir, 'missing', 'm.json'), package, notes,
                       self.docs_path):
            result = self.fails(*self.base, '--steps', '5', '--save', target, mentions='--save')
            self.assertEqual(result.stdout, '')
        with open(package) as f:
            self.assertIn('for microgpt', f.read())  # a file --save did not write stays as it is
        with open(notes) as f:
            self.assertEqual(f.read(), 'mine\n')

    def test_an_unwritable_folder_is_refused(self):
        if os.geteuid() == 0:
            self.skipTest('root writes anywhere')
        folder = self.path('locked')
        os.mkdir(folder, 0o500)
        self.fails(*self.base, '--save', os.path.join(folder, 'm.json'), mentions='--save')

    def test_a_checkpoint_that_save_wrote_is_overwritten(self):
        path = self.saved()
        time.sleep(0.01)
        self.ok(*self.base, '--steps', '3', '--save', path)
        with open(path) as f:
            self.assertEqual(json.load(f)['trained_on']['steps'], 3)


class TestDivergedTrainingSavesNothing(CheckpointTest):
    def test_a_learning_rate_that_diverges_stops_at_once_in_one_line_and_saves_nothing(self):
        path = self.saved()
        with open(path) as f:
            good = f.read()
        result = self.fails(*self.base, '--steps', '50', '--lr', '1e100', '--save', path,
                            mentions='try a lower --lr than 1e+100')
        self.assertRegex(result.stderr, r'diverged at step \d+ ')
        self.assertNotIn('step 5/50', result.stdout)  # stopped at once, not at the end
        with open(path) as f:
            self.assertEqual(f.read(), good)

    def test_part_1_whose_probability_rounds_to_0_stops_in_one_line_too(self):
        self.fails('--input', self.docs_path, '--steps', '60', '--lr', '0.5', '--reference',
                   '--eval-docs', '0', '--samples', '0', mentions='try a lower --lr than 0.5')

    def test_whatever_a_high_learning_rate_lets_save_write_load_reads(self):
        outcomes = []
        for lr in ('0.5', '2', '1e8'):
            path = self.path(f'lr{lr}.json')
            result = self.run_cli(*self.base, '--steps', '40', '--lr', lr, '--save', path)
            outcomes.append(result.returncode)
            if result.returncode == 0:
                self.ok('--input', self.docs_path, '--load', path, '--steps', '0')
            else:  # it diverged: one line, and no file
                self.assertIn('diverged', result.stderr)
                self.assertFalse(os.path.exists(path))
        self.assertEqual(outcomes[0], 0)  # 0.5 trains on, 1e8 does not
        self.assertEqual(outcomes[-1], 2)

    def test_weights_that_are_not_finite_are_never_written_even_after_a_finite_loss(self):
        with open(microgpt.__file__, encoding='utf-8') as f:
            source = f.read()
        last_line = "        adam['step'] = step + 1\n"  # Part 1's train: a weight made infinite
        self.assertEqual(source.count(last_line), 1)
        copy = self.path('microgpt.py', source.replace(
            last_line, '        param_list[0].data = math.inf if step == 2 else 0.0\n' + last_line))
        target = self.path('inf.json')
        result = self.run_cli(*self.base, '--steps', '3', '--save', target)
        self.assertEqual(result.returncode, 0)  # (the real file, as a control)
        os.remove(target)
        result = subprocess.run([sys.executable, copy, *self.base, '--steps', '3', '--save',
                                 target], capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn('diverged at step 3', result.stderr)
        self.assertIn('step 3/3 | loss', result.stdout)  # whose loss was finite
        self.assertIn('train is edited: it runs as written', result.stdout)
        self.assertFalse(os.path.exists(target))


class TestCheckpointsAreCheckedInFull(CheckpointTest):
    def test_broken_checkpoints_end_in_one_line(self):
        cases = [
            (self.path('missing.json'), 'not a checkpoint that --save wrote'),
            (self.path('other.json', '{"format": "other"}'), 'not a checkpoint that --save wrote'),
            (self.path('cut.json', microgpt.CHECKPOINT_START + ' "con'), 'cannot be read'),
            (self.variant('config.json', lambda c: c['config'].update(n_head=3)),
             'n_head dividing n_embd'),
            (self.variant('float.json', lambda c: c['config'].update(n_embd=8.0)), 'config'),
            (self.variant('chars.json', lambda c: c.update(chars=None)), 'chars'),
            (self.variant('rows.json', lambda c: c['weights']['wte'].pop()), 'weight wte'),
            (self.variant('row.json', lambda c: c['weights']['lm_head'][0].pop()),
             'weight lm_head'),
            (self.variant('gone.json', lambda c: c['weights'].pop('wpe')), 'weight wpe'),
            (self.variant('inf.json', lambda c: c['weights']['wpe'][0].__setitem__(0, 1e999)),
             'finite numbers'),
            (self.variant('text.json', lambda c: c['weights']['wpe'][0].__setitem__(0, '1')),
             'finite numbers'),
            (self.variant('steps.json', lambda c: c['trained_on'].update(steps=None)),
             'trained_on'),
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

    def test_a_149_byte_checkpoint_describing_a_huge_model_is_refused_at_once(self):
        text = (microgpt.CHECKPOINT_START + ' "config": {"n_embd": 16, "n_head": 4, '
                '"n_layer": 4000000, "block_size": 16}, "chars": "ab", "trained_on": {"input": '
                '"x", "documents": 1, "steps": 0}, "weights": {}}')
        path = self.path('huge.json', text)
        start = time.perf_counter()
        self.fails('--input', self.docs_path, '--load', path, mentions='parameters at most')
        self.assertLess(time.perf_counter() - start, 10)

    def test_size_flags_with_load_and_an_input_outside_its_vocabulary_end_in_one_line(self):
        path = self.saved()
        self.fails('--input', self.docs_path, '--load', path, '--n-embd', '16',
                   mentions='leave out the size flags')
        accented = self.path('accented.txt', 'zoë\n')
        self.fails('--input', accented, '--load', path, mentions="'ë' is not in the vocabulary")

    def test_a_new_checkpoint_is_readable_by_its_owner_only_mkstemps_mode(self):
        mode = stat.S_IMODE(os.stat(self.saved()).st_mode)
        self.assertEqual(mode & 0o600, 0o600)


if __name__ == '__main__':
    unittest.main()
