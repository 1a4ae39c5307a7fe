"""The command line: every flag shapes the run, and bad flags and input files end in one line."""
import os
import re
import subprocess
import sys

from tests.helpers import NAMES, ROOT, SCRIPT, SMALL, CliTest, microgpt, samples_of


class TestFlags(CliTest):
    def test_help_lists_every_flag_with_its_default(self):
        out = ' '.join(self.ok('--help').split())  # undo argparse's line wrapping
        for flag in ('--input', '--val-fraction', '--n-embd', '--n-head', '--n-layer',
                     '--block-size', '--steps', '--lr', '--seed', '--reference', '--save',
                     '--load', '--eval-docs', '--samples', '--temperature', '--prompt',
                     '--explain'):
            self.assertIn(flag, out)
        for default in ('(0.1)', '(16)', '(4)', '(1)', '(1000)', '(0.01)', '(42)', '(500)',
                        '(20)', '(0.5)', '(names.txt,'):
            self.assertIn(default, out)

    def test_input_steps_sizes_and_eval_docs_shape_the_run(self):
        out = self.ok('--input', self.docs_path, '--steps', '7', '--samples', '2', '--n-layer',
                      '2', *SMALL, '--val-fraction', '0.2', '--eval-docs', '30')
        self.assertIn(f'300 documents in {self.docs_path}, 240 + 60 distinct (train + held out)',
                      out)
        self.assertIn('step 7/7 ', out)
        self.assertIn('Config(n_embd=8, n_head=2, n_layer=2, block_size=8)', out)
        self.assertRegex(out, r'loss on 30 held-out docs \d\.\d{4};')
        self.assertEqual(len(samples_of(out)), 2)
        self.assertTrue(all(len(text) <= 8 for text, _, _ in samples_of(out)))

    def test_lr_seed_and_temperature_change_the_results_and_the_same_flags_repeat_them(self):
        base = [*self.base, '--steps', '10', '--samples', '8']
        first = self.ok(*base)
        self.assertEqual(samples_of(first), samples_of(self.ok(*base)))  # deterministic
        for flag, value in (('--lr', '0.05'), ('--seed', '3'), ('--temperature', '1.5')):
            self.assertNotEqual(samples_of(first), samples_of(self.ok(*base, flag, value)), flag)

    def test_reference_runs_part_1_alone_with_the_same_results(self):
        base = [*self.base, '--steps', '5', '--samples', '4']
        fast = self.ok(*base)
        plain = self.ok(*base, '--reference')
        self.assertEqual(samples_of(fast), samples_of(plain))
        self.assertEqual(re.findall('loss on .*', fast), re.findall('loss on .*', plain))

    def test_steps_0_samples_the_untrained_model_and_samples_0_and_eval_docs_0_skip(self):
        out = self.ok(*self.base, '--steps', '0')
        self.assertNotIn('step ', out)
        self.assertEqual(len(samples_of(out)), 3)
        out = self.ok(*self.base, '--steps', '2', '--samples', '0', '--eval-docs', '0')
        self.assertEqual(samples_of(out), [])
        self.assertNotIn('loss on', out)
        self.assertNotIn('mean surprise', out)

    def test_prompt_starts_every_sample(self):
        out = self.ok(*self.base, '--steps', '20', '--prompt', 'jo', '--samples', '10')
        self.assertEqual(len(samples_of(out)), 10)
        self.assertTrue(all(text.startswith('jo') for text, _, _ in samples_of(out)))

    def test_samples_are_labelled_trained_on_real_unseen_new_or_cut_as_a_direct_check_says(self):
        words = [a + b + c for a in 'abc' for b in ['', *'abc'] for c in ['', *'abc']]
        path = self.path('abc.txt', '\n'.join(words) + '\n')  # 39 strings of a, b and c
        out = self.ok('--input', path, *SMALL, '--steps', '20', '--samples', '40',
                      '--val-fraction', '0.3')
        docs = microgpt.load_docs(path)
        train_docs, val_docs = microgpt.split_docs(docs, 42, 0.3)
        found = samples_of(out)
        self.assertEqual(len(found), 40)
        for text, status, _ in found:
            if text in train_docs[:20]:  # the 20 documents that its 20 steps reached
                self.assertEqual(status, 'trained on', text)
            elif text in docs:  # held out, or in the training split where no step reached
                self.assertEqual(status, 'real, unseen', text)
            else:
                self.assertEqual(status, 'cut' if len(text) == 8 else 'new', text)
        self.assertEqual({status for _, status, _ in found},
                         {'trained on', 'real, unseen', 'new', 'cut'})

    def test_a_sample_cut_at_block_size_is_labelled_cut(self):
        lines = self.path('lines.txt', 'a fairly long line of text here\n' * 20)
        found = samples_of(self.ok('--input', lines, *SMALL, '--steps', '30', '--samples', '10',
                                   '--temperature', '2'))
        self.assertTrue(found)
        for text, status, _ in found:
            self.assertEqual(status == 'cut', len(text) == 8, (text, status))
        self.assertIn('cut', [status for _, status, _ in found])

    def test_samples_along_the_way_come_after_steps_1_and_a_tenth_and_half(self):
        out = self.ok(*self.base, '--steps', '40')
        watched = re.findall(r'^samples after step (\d+) \(loss \d\.\d{4}\): ', out, re.M)
        self.assertEqual(watched, ['1', '4', '20'])

    def test_any_utf8_text_with_accents_spaces_digits_and_crlf_works(self):
        path = self.path('cities.txt', 'São Paulo\r\nZürich\r\n\r\nNew York 2\r\nKöln\r\n')
        out = self.ok('--input', path, *SMALL, '--steps', '3', '--samples', '2')
        self.assertIn('4 documents', out)
        self.assertIn(f"{len(set('São PauloZürichNew York 2Köln'))} characters + BOS", out)


class TestWhatNewcomersTripOn(CliTest):
    def test_without_input_it_reads_names_txt_here_else_the_one_beside_the_file(self):
        flags = [*SMALL, '--steps', '1', '--samples', '0', '--eval-docs', '0']
        self.assertIn(f"documents in {os.path.join(ROOT, 'names.txt')}, ", self.ok(*flags))
        self.path('names.txt', 'ann\nbo\n')
        self.assertIn('2 documents in names.txt, ', self.ok(*flags))

    def test_documents_longer_than_block_size_are_counted_before_training(self):
        lines = self.path('lines.txt', ''.join(f'a sentence of forty characters, no. {i:04d}\n'
                                               for i in range(30)))
        out = self.ok('--input', lines, *SMALL, '--steps', '1', '--samples', '0')
        self.assertIn('note: 27 docs do not fit block_size 8: their ends are never trained on '
                      '(--block-size 41 fits them)', out)
        self.assertLess(out.index('note: 27'), out.index('step 1/1'))

    def test_n_layer_0_is_a_model_of_embeddings_straight_to_the_logits(self):
        out = self.ok(*self.base, '--n-layer', '0', '--steps', '20')
        self.assertIn(f'model: {2 * 27 * 8 + 8 * 8} parameters, Config(n_embd=8, n_head=2, '
                      'n_layer=0, block_size=8)', out)
        self.assertRegex(out, r'loss on 20 held-out docs \d\.\d{4};')

    def test_counting_letter_pairs_takes_memory_for_the_pairs_that_occur_not_vocab_squared(self):
        chars = ''.join(map(chr, range(0x4e00, 0x4e00 + 20000)))  # 20,000 distinct characters
        docs = [chars[i:i + 8] for i in range(0, len(chars), 8)]
        tokenizer = microgpt.Tokenizer.from_docs(docs)
        try:
            import tracemalloc
        except ImportError:  # PyPy has no tracemalloc: CPython's suites run this
            self.skipTest('no tracemalloc in this interpreter')
        tracemalloc.start()
        microgpt.baseline_losses(docs, docs[:5], tokenizer, 16)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        self.assertLess(peak, 20_000_000)  # a table of 20,001 x 20,001 counts would be 3 GB


class TestBadFlagsAndFiles(CliTest):
    def test_bad_flags_end_in_one_line_before_any_work(self):
        for args, mentions in [
                (['--steps', '-1'], 'error: --steps cannot'),
                (['--samples', '-2'], 'error: --samples cannot'),
                (['--eval-docs', '-1'], 'error: --eval-docs cannot'),
                (['--n-embd', '0'], 'sizes from 1'), (['--n-head', '-1'], 'sizes from 1'),
                (['--n-layer', '-1'], 'n_layer from 0'), (['--block-size', '0'], 'sizes from 1'),
                (['--save', ''], 'a path cannot be empty'), (['--load', ''], 'cannot be empty'),
                (['--html', ''], 'a path cannot be empty'),
                (['--save', 'same.out', '--html', 'same.out'], 'cannot name one file'),
                (['--n-embd', '10', '--n-head', '4'], 'n_head dividing n_embd'),
                (['--n-embd', '2048', '--n-layer', '4'], '10,000,000 parameters at most'),
                (['--temperature', '0'], '--temperature'), (['--temperature', 'nan'], 'from 1e-6'),
                (['--temperature', '1e-162'], '--temperature'),
                (['--lr', '-1'], '--lr'), (['--lr', 'nan'], '--lr'), (['--lr', 'inf'], '--lr'),
                (['--lr', '0'], '--lr must be a positive number'),
                (['--val-fraction', '1'], '--val-fraction'),
                (['--val-fraction', '-0.1'], '--val-fraction'),
                (['--steps', 'many'], '--steps'), (['--bogus'], 'bogus'),
                (['--prompt', 'J'], "'J' is not in the vocabulary"),
                (['--explain', 'emmA'], "'A' is not in the vocabulary"),
                (['--prompt', 'abcdefgh'], 'shorter than block_size, 8')]:
            result = self.fails(*self.base, *args, mentions=mentions)
            self.assertEqual(result.stdout, '', args)  # nothing done before the error

    def test_bad_input_files_end_in_one_line(self):
        os.mkdir(self.path('a_folder'))
        latin1 = self.path('latin1.txt')
        with open(latin1, 'wb') as f:
            f.write('Z\xfcrich\n'.encode('latin-1'))
        for path, mentions in [(self.path('missing.txt'), 'no regular file'),
                               (self.path('a_folder'), 'no regular file'),
                               ('/dev/zero', 'no regular file'),
                               (latin1, 'UTF-8'),
                               (self.path('empty.txt', '\n  \n\n'), 'no documents')]:
            self.fails('--input', path, mentions=mentions)


class TestNotebookArguments(CliTest):
    def run_as_cell(self, environment):  # the file as a notebook cell runs it: no __file__
        code = f"exec(compile(open({SCRIPT!r}).read(), 'cell', 'exec'))"
        return subprocess.run([sys.executable, '-c', code, '-f', 'kernel.json'], text=True,
                              capture_output=True, env=dict(os.environ, **environment),
                              cwd=ROOT, timeout=120)

    def test_flags_come_from_microgpt_args_and_the_kernels_own_are_ignored(self):
        result = self.run_as_cell({'MICROGPT_ARGS': f'--steps 3 --samples 2 --eval-docs 5 '
                                                    f'--input "{NAMES}" ' + ' '.join(SMALL)})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('step 3/3 ', result.stdout)
        self.assertEqual(len(samples_of(result.stdout)), 2)
