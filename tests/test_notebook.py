"""microgpt.py pasted whole into one cell of a real Jupyter kernel, then README's follow-up cell.

Needs nbclient and ipykernel, which only this test uses: .ci/run installs them in a virtualenv
and sets MICROGPT_REQUIRE_NOTEBOOK=1, so that there a missing package fails instead of skipping.
"""
import os
import re
import unittest

from tests.helpers import ROOT

try:
    import nbclient
    import nbformat
    HAVE_JUPYTER = True
except ImportError:
    HAVE_JUPYTER = False
REQUIRED = os.environ.get('MICROGPT_REQUIRE_NOTEBOOK') == '1'


@unittest.skipUnless(HAVE_JUPYTER or REQUIRED, 'nbclient and ipykernel are not installed')
class TestNotebook(unittest.TestCase):
    def test_whole_file_in_a_cell_trains_then_the_readme_follow_up_cell_uses_its_globals(self):
        with open(os.path.join(ROOT, 'microgpt.py'), encoding='utf-8') as f:
            source = f.read()
        cells = [source, readme_follow_up_cell(), 'print(len(more_losses), len(params))',
                 LATER_SOFTMAX]
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        os.environ['MICROGPT_ARGS'] = '--steps 30 --samples 4'  # the kernel inherits it
        try:
            client = nbclient.NotebookClient(notebook, timeout=300, kernel_name='python3',
                                             resources={'metadata': {'path': ROOT}})
            client.execute()  # raises CellExecutionError if a cell fails
        finally:
            del os.environ['MICROGPT_ARGS']
        texts = []
        for cell in notebook.cells:
            self.assertFalse([o for o in cell.outputs if o.output_type == 'error'])
            texts.append(''.join(o.get('text', '') for o in cell.outputs
                                 if o.output_type == 'stream'))
        self.assertIn('step 30/30', texts[0])  # the flags came from MICROGPT_ARGS, not argv
        self.assertIn('sample  4  ', texts[0])
        self.assertIn('4,192 parameters', texts[0])
        pages = [o['data']['text/html'] for o in notebook.cells[0].outputs
                 if o.output_type == 'display_data' and 'text/html' in o.get('data', {})]
        self.assertEqual(len(pages), 1)  # the page of the run, under the cell, with no --html
        self.assertEqual(pages[0].count('<svg'), 7)  # the loss, 4 heads, what it expects, wte
        # the cell's source was read, and is as proven
        self.assertIn("Part 2's stand-ins in place: linear_fused, rmsnorm_fused, attention_fused,"
                      ' mlp_relu_skip, cross_entropy_fused, train_on_tape (', texts[0])
        self.assertRegex(texts[1], r"^\[('[a-z]*', ){4}'[a-z]*'\]\n")  # five more names
        self.assertRegex(texts[1], r'100 more steps: held-out loss \d\.\d{4}\n')
        self.assertEqual(texts[2], '100 9\n')  # 100 more losses; the 9 weight matrices
        self.assertEqual(texts[3].splitlines(), [
            'names: mlp linear softmax',  # Part 1's own, and the learner's softmax
            "softmax is edited: Part 1's attention, cross_entropy run in place of "
            'attention_fused, cross_entropy_fused',
            'the same numbers: True', 'changed by the new softmax: True'])


# A later cell: a softmax of the learner's, then train, mean_loss and sample from the same weights
# with Part 2 and without it, and with Part 1's softmax for contrast.
LATER_SOFTMAX = """
part_1_softmax = softmax

def softmax(logits):  # sharper: the scores doubled
    max_logit = max(logit.data for logit in logits)
    exps = [(2 * (logit - max_logit)).exp() for logit in logits]
    total = sum(exps)
    return [e / total for e in exps]

def numbers(on):
    weights = {name: [[Value(p.data) for p in row] for row in matrix]
               for name, matrix in params.items()}
    with efficiency(on) as notes:
        losses = train(train_docs, tokenizer, weights, config, 3, 0.01)
        held_out = mean_loss(val_docs[:20], tokenizer, weights, config)
        texts = [sample(weights, config, tokenizer, random.Random(2)) for _ in range(3)]
    return losses + [held_out], texts, notes

fast = numbers(True)
plain = numbers(False)
print('names:', mlp.__name__, linear.__name__, softmax.__name__)
print(*fast[2][1:])
print('the same numbers:', all(abs(a - b) < 1e-9 for a, b in zip(fast[0], plain[0]))
      and fast[1] == plain[1])
softmax = part_1_softmax
print('changed by the new softmax:', numbers(False)[0] != plain[0])
"""


@unittest.skipUnless(HAVE_JUPYTER or REQUIRED, 'nbclient and ipykernel are not installed')
class TestPercentRun(unittest.TestCase):
    def test_percent_run_runs_as_the_script_does_and_leaves_the_kernels_signals_as_they_were(self):
        cells = ['import signal\nbefore = {s: signal.getsignal(s) for s in signal.valid_signals()}',
                 '%run microgpt.py --steps 30 --samples 2 --eval-docs 10',
                 'print(len(losses), mlp.__name__, before == {s: signal.getsignal(s) '
                 'for s in signal.valid_signals()})']
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        client = nbclient.NotebookClient(notebook, timeout=300, kernel_name='python3',
                                         resources={'metadata': {'path': ROOT}})
        client.execute()
        outputs = [''.join(o.get('text', '') for o in cell.outputs if o.output_type == 'stream')
                   for cell in notebook.cells]
        self.assertIn('step 30/30', outputs[1])
        self.assertIn('sample  2  ', outputs[1])
        self.assertEqual(outputs[2], '30 mlp True\n')


def readme_follow_up_cell():
    """The code block that README.md puts after its 'follow-up cell' marker."""
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    return re.search(r'<!-- follow-up cell -->\n```python\n(.*?)```', readme, re.S)[1]


if __name__ == '__main__':
    unittest.main()
