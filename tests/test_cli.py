import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

from tests.helpers import NAMES, ROOT, microgpt

SCRIPT = os.path.join(ROOT, 'microgpt.py')
SMALL = ['--n-embd', '8', '--n-head', '2', '--block-size', '8']


def run_cli(*args, cwd=None):
    result = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                            cwd=cwd, timeout=120)
    return result.returncode, result.stdout, result.stderr


def samples_of(stdout):  # [(text, status), ...]
    return [(text, status) for status, text in
            re.findall(r'^sample +\d+  (new|in train|held out) +\d+\.\d\d  (.*)$', stdout, re.M)]


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        with open(NAMES) as f:
            names = [next(f).strip() for _ in range(300)]
        self.docs_path = self.path('docs.txt', '\n'.join(names) + '\n')

    def path(self, name, text=None, data=None):
        path = os.path.join(self.dir, name)
        if text is not None or data is not None:
            with open(path, 'wb') as f:
                f.write(data if data is not None else text.encode('utf-8'))
        return path

    def ok(self, *args):
        code, out, err = run_cli(*args)
        self.assertEqual(code, 0, err)
        return out


class TestFlags(CliTest):
    def test_help_documents_every_flag_with_its_default(self):
        out = ' '.join(self.ok('--help').split())  # undo argparse's line wrapping
        for flag in ('--input', '--steps', '--lr', '--n-embd', '--n-head', '--n-layer',
                     '--block-size', '--seed', '--samples', '--temperature', '--prompt', '--save',
                     '--load', '--val-fraction', '--reference'):
            self.assertIn(flag, out)
        for default in ('1000', '0.01', '16', '42', '20', '0.5', '0.1'):
            self.assertIn(f'default: {default}', out)
        self.assertIn('first block_size', out)  # says how long documents are handled

    def test_input_steps_and_sizes_shape_the_run(self):
        out = self.ok('--input', self.docs_path, '--steps', '7', '--samples', '2', '--n-layer',
                      '2', *SMALL, '--val-fraction', '0.2')
        self.assertIn('300 documents in ' + self.docs_path + ' (240 train, 60 held out)', out)
        self.assertIn('step 7/7', out)
        self.assertIn('Config(n_embd=8, n_head=2, n_layer=2, block_size=8)', out)
        self.assertIn('evaluating on 60 held-out and 60 training documents', out)
        self.assertRegex(out, r'loss on held-out docs \d\.\d{4}, on training docs \d\.\d{4}')
        self.assertEqual(len(samples_of(out)), 2)
        self.assertTrue(all(len(text) <= 8 for text, _ in samples_of(out)))

    def test_lr_seed_and_temperature_change_the_results(self):
        base = ['--input', self.docs_path, '--steps', '10', '--samples', '8', *SMALL]
        reference = self.ok(*base)
        self.assertEqual(samples_of(reference), samples_of(self.ok(*base)))  # deterministic
        for flag, value in (('--lr', '0.05'), ('--seed', '3'), ('--temperature', '1.5')):
            other = self.ok(*base, flag, value)
            self.assertNotEqual(samples_of(reference), samples_of(other), flag)
        self.assertNotEqual(re.findall('loss curve.*', reference),
                            re.findall('loss curve.*', self.ok(*base, '--lr', '0.05')))

    def test_reference_runs_part_1_alone_with_the_same_results(self):
        base = ['--input', self.docs_path, '--steps', '5', '--samples', '4', *SMALL]
        fast = self.ok(*base)
        plain = self.ok(*base, '--reference')
        self.assertEqual(samples_of(fast), samples_of(plain))
        self.assertEqual(re.findall('loss on held-out.*', fast),
                         re.findall('loss on held-out.*', plain))

    def test_steps_0_samples_the_untrained_model_and_samples_0_skips_sampling(self):
        out = self.ok('--input', self.docs_path, '--steps', '0', '--samples', '3', *SMALL)
        self.assertNotIn('trained', out)
        self.assertEqual(len(samples_of(out)), 3)
        out = self.ok('--input', self.docs_path, '--steps', '2', '--samples', '0', *SMALL)
        self.assertEqual(samples_of(out), [])
        self.assertNotIn('samples are new', out)

    def test_prompt_starts_every_sample(self):
        out = self.ok('--input', self.docs_path, '--steps', '20', '--prompt', 'jo', *SMALL)
        self.assertEqual(len(samples_of(out)), 20)
        self.assertTrue(all(text.startswith('jo') for text, _ in samples_of(out)))

    def test_novelty_report_matches_a_direct_check_against_the_dataset(self):
        out = self.ok('--input', self.docs_path, '--steps', '150', '--samples', '30', *SMALL,
                      '--val-fraction', '0.5')
        with open(self.docs_path) as f:
            docs = set(f.read().split())
        found = samples_of(out)
        self.assertEqual(len(found), 30)
        for text, status in found:
            self.assertEqual(status == 'new', text not in docs, text)
        new = sum(status == 'new' for _, status in found)
        self.assertIn(f'{new} of 30 samples are new', out)

    def test_any_utf8_text_with_accents_spaces_digits_and_crlf_works(self):
        path = self.path('cities.txt', 'São Paulo\r\nZürich\r\n\r\nNew York 2\r\nKöln\r\n')
        out = self.ok('--input', path, '--steps', '3', '--samples', '2', *SMALL)
        self.assertIn('4 documents', out)
        self.assertIn(f"vocabulary: {len(set('São PauloZürichNew York 2Köln')) + 1} tokens", out)


class TestCheckpoints(CliTest):
    def test_save_then_load_with_steps_0_reproduces_validation_loss_and_samples(self):
        ckpt = self.path('model.json')
        trained = self.ok('--input', self.docs_path, '--steps', '30', *SMALL, '--save', ckpt)
        loaded = self.ok('--input', self.docs_path, '--steps', '0', '--load', ckpt,
                         '--eval-docs', '500')
        held_out = re.compile('loss on held-out docs .*')
        self.assertEqual(len(held_out.findall(trained)), 1)
        self.assertEqual(held_out.findall(trained), held_out.findall(loaded))
        self.assertEqual(samples_of(trained), samples_of(loaded))
        self.assertNotIn('warning', loaded)  # the same input, seed and split as in training
        with open(ckpt) as f:
            saved = json.load(f)
        self.assertEqual((saved['format'], saved['version']), ('microgpt', 1))
        self.assertEqual(saved['config'], {'n_embd': 8, 'n_head': 2, 'n_layer': 1,
                                           'block_size': 8})
        self.assertEqual(len(saved['weights']['wte']), len(saved['chars']) + 1)

    def test_load_with_steps_continues_training_from_the_weights(self):
        ckpt = self.path('model.json')
        self.ok('--input', self.docs_path, '--steps', '60', *SMALL, '--save', ckpt)
        fresh = self.ok('--input', self.docs_path, '--steps', '5', *SMALL)
        resumed = self.ok('--input', self.docs_path, '--steps', '5', '--load', ckpt)
        first = re.compile(r'loss (\d\.\d+) at the first step')
        self.assertLess(float(first.search(resumed)[1]), float(first.search(fresh)[1]))

    def test_a_save_interrupted_before_the_rename_keeps_the_old_checkpoint(self):
        ckpt = self.path('model.json', text='{"the": "old checkpoint"}')
        config = microgpt.Config(n_embd=8, n_head=2)
        tokenizer = microgpt.Tokenizer('ab')
        params = microgpt.init_params(config, tokenizer.vocab_size, random.Random(0))
        with mock.patch.object(microgpt.os, 'replace', side_effect=KeyboardInterrupt):
            with self.assertRaises(KeyboardInterrupt):
                microgpt.save_checkpoint(ckpt, config, tokenizer, params, {})
        with open(ckpt) as f:
            self.assertEqual(f.read(), '{"the": "old checkpoint"}')
        self.assertEqual(sorted(os.listdir(self.dir)), ['docs.txt', 'model.json'])

    def test_ctrl_c_during_training_saves_and_still_samples(self):
        ckpt = self.path('model.json')
        proc = subprocess.Popen([sys.executable, SCRIPT, '--input', self.docs_path, '--steps',
                                 '1000000', *SMALL, '--save', ckpt, '--samples', '3'],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        self.assertRegex(out, r'interrupted at step \d+ of 1000000')
        self.assertIn('saved the model to', out)
        self.assertEqual(len(samples_of(out)), 3)
        with open(ckpt) as f:
            self.assertEqual(json.load(f)['format'], 'microgpt')


class TestBadInput(CliTest):
    def assert_fails_cleanly(self, *args, mentions):
        code, out, err = run_cli(*args)
        self.assertEqual(code, 2, f'{args}: {err}')
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertNotIn('Traceback', err)
        self.assertIn(mentions, err)
        return err

    def test_bad_flags_exit_2_with_one_line(self):
        docs = ['--input', self.docs_path]
        for args, mentions in [
                (['--steps', '-1'], '--steps'), (['--samples', '-2'], '--samples'),
                (['--n-embd', '0'], '--n-embd'), (['--n-head', '-1'], '--n-head'),
                (['--n-layer', '0'], '--n-layer'), (['--block-size', '0'], '--block-size'),
                (['--n-embd', '10', '--n-head', '4'], 'divisible'),
                (['--n-head', '3'], 'divisible by n_head (3), not 16'),
                (['--n-head', '0'], '--n-head must be positive'),
                (['--temperature', '0'], '--temperature'),
                (['--temperature', 'nan'], 'temperature'),
                (['--lr', '-1'], '--lr'), (['--val-fraction', '1'], '--val-fraction'),
                (['--val-fraction', '-0.1'], '--val-fraction'), (['--steps', 'many'], '--steps'),
                (['--bogus'], 'bogus'), (['--prompt', 'J'], 'vocabulary'),
                (['--prompt', 'abcdefghijklmnop'], 'block_size'),
                (['--save', os.path.join(self.dir, 'no', 'such', 'dir', 'm.json')], 'cannot save')]:
            self.assert_fails_cleanly(*docs, *args, mentions=mentions)

    def test_bad_input_files_exit_2_with_one_line(self):
        os.mkdir(self.path('a_folder'))
        for path, mentions in [(self.path('missing.txt'), 'missing.txt'),
                               (self.path('a_folder'), 'a_folder'),
                               (self.path('latin1.txt', data='Z\xfcrich\n'.encode('latin-1')),
                                'UTF-8'),
                               (self.path('empty.txt', text='\n  \n\n'), 'no documents')]:
            self.assert_fails_cleanly('--input', path, mentions=mentions)

    def test_bad_checkpoints_exit_2_with_one_line(self):
        good = self.path('good.json')
        self.ok('--input', self.docs_path, '--steps', '1', *SMALL, '--save', good)
        with open(good) as f:
            saved = json.load(f)

        def variant(name, change):
            ckpt = json.loads(json.dumps(saved))
            change(ckpt)
            return self.path(name, json.dumps(ckpt))
        cases = [(self.path('missing.json'), 'missing.json'),
                 (self.path('text.json', 'not json at all'), 'text.json'),
                 (variant('format.json', lambda c: c.update(format='other')), 'checkpoint'),
                 (variant('version.json', lambda c: c.update(version=2)), 'version 1'),
                 (variant('config.json', lambda c: c['config'].update(n_head=3)), 'config'),
                 (variant('chars.json', lambda c: c.update(chars='aa' + c['chars'][2:])),
                  'distinct'),
                 (variant('shape.json', lambda c: c['weights']['wte'].pop()), 'shape'),
                 (variant('row.json', lambda c: c['weights']['lm_head'][0].pop()), 'shape'),
                 (variant('names.json', lambda c: c['weights'].pop('wpe')), 'shape'),
                 (variant('extra.json', lambda c: c['weights'].update(wxe=[])), 'wxe'),
                 (variant('nan.json', lambda c: c['weights']['wpe'][0].__setitem__(0, 1e999)),
                  'finite'),
                 (variant('str.json', lambda c: c['weights']['wpe'][0].__setitem__(0, '1')),
                  'finite')]
        for path, mentions in cases:
            self.assert_fails_cleanly('--input', self.docs_path, '--steps', '0', '--load', path,
                                      mentions=mentions)
        self.assert_fails_cleanly('--input', self.docs_path, '--load', good, '--n-embd', '16',
                                  mentions='n_embd=8')
        accented = self.path('accented.txt', 'zoë\n')
        self.assert_fails_cleanly('--input', accented, '--load', good, mentions='vocabulary')


class TestNotebookArguments(unittest.TestCase):
    def test_ipython_argv_is_ignored_and_flags_come_from_microgpt_args(self):
        code = ("import sys, types; sys.modules['IPython'] = types.ModuleType('IPython'); "
                "sys.argv = ['ipykernel_launcher.py', '-f', 'kernel.json']; "
                f"exec(compile(open({SCRIPT!r}).read(), 'cell', 'exec'))")
        env = dict(os.environ, MICROGPT_ARGS='--steps 3 --samples 2 --n-embd 8 --n-head 2')
        result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                                env=env, cwd=ROOT, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('step 3/3', result.stdout)
        self.assertEqual(len(samples_of(result.stdout)), 2)


if __name__ == '__main__':
    unittest.main()
