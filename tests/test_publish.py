"""The HTML pages of the executed notebooks: figures as images, explorers as their static PNG, an index."""
import base64

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tempscale import publish

pytest.importorskip("nbconvert")
PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a")).decode()   # only the PNG signature: enough to embed


@pytest.mark.slow
def test_export_writes_pages_with_images_and_no_dead_widgets(tmp_path):
    executed = tmp_path / "executed"
    executed.mkdir()
    nb = new_notebook(cells=[new_markdown_cell("# 99 · A test page"), new_code_cell("explorer", outputs=[
        new_output("display_data", data={"image/png": PNG, "text/plain": "<Explorer>",
                                         "application/vnd.jupyter.widget-view+json": {"model_id": "m1",
                                                                                      "version_major": 2,
                                                                                      "version_minor": 0}})])])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"m1": {}}}}
    nbformat.write(nb, executed / "99_test.ipynb")
    index, page = publish.export_html(executed, tmp_path / "html")
    assert '<a href="99_test.html">99 · A test page</a>' in index.read_text()
    text = page.read_text()
    assert f"data:image/png;base64,{PNG}" in text and "widget-view" not in text


def test_progress_bars_are_dropped_and_warnings_kept():
    bar = new_output("stream", name="stderr", text="\rrun-tau50:  42%|████      | 5/12 [00:01<00:02, 3.1it/s]")
    blank = new_output("stream", name="stderr", text="\r" + " " * 80 + "\r")      # a bar clearing its line
    warning = new_output("stream", name="stderr", text="UserWarning: this run STARTS FROM SCRATCH\n")
    printed = new_output("stream", name="stdout", text="clean 99%|\n")
    nb = new_notebook(cells=[new_code_cell("train()", outputs=[bar, blank, warning, printed])])
    kept = publish.drop_progress_bars(nb).cells[0].outputs
    assert kept == [warning, printed]     # a page is the same whether the runs were trained or read from the store
