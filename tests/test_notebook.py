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
        cells = [source, readme_follow_up_cell(), 'print(len(more_losses), len(params))']
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
        self.assertRegex(texts[1], r"^\[('[a-z]*', ){4}'[a-z]*'\]\n")  # five more names
        self.assertRegex(texts[1], r'100 more steps: held-out loss \d\.\d{4}\n')
        self.assertEqual(texts[2], '100 9\n')  # 100 more losses; the 9 weight matrices


def readme_follow_up_cell():
    """The code block that README.md puts after its 'follow-up cell' marker."""
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    return re.search(r'<!-- follow-up cell -->\n```python\n(.*?)```', readme, re.S)[1]


if __name__ == '__main__':
    unittest.main()
