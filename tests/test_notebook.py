"""microgpt.py pasted whole into one cell of a real Jupyter kernel.

Needs nbclient and ipykernel, which only this test uses: .ci/run installs them in a virtualenv
and sets MICROGPT_REQUIRE_NOTEBOOK=1, so that there a missing package fails instead of skipping.
"""
import os
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
    def test_whole_file_pasted_in_a_cell_trains_and_samples(self):
        with open(os.path.join(ROOT, 'microgpt.py'), encoding='utf-8') as f:
            source = f.read()
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        os.environ['MICROGPT_ARGS'] = '--steps 30 --samples 4'  # the kernel inherits it
        try:
            client = nbclient.NotebookClient(notebook, timeout=300, kernel_name='python3',
                                             resources={'metadata': {'path': ROOT}})
            client.execute()  # raises CellExecutionError if the cell fails
        finally:
            del os.environ['MICROGPT_ARGS']
        outputs = notebook.cells[0].outputs
        self.assertFalse([o for o in outputs if o.output_type == 'error'])
        text = ''.join(o.get('text', '') for o in outputs if o.output_type == 'stream')
        self.assertIn('step 30/30', text)  # the flags came from MICROGPT_ARGS, not kernel argv
        self.assertIn('sample  4:', text)
        self.assertIn('4,192 parameters', text)


if __name__ == '__main__':
    unittest.main()
