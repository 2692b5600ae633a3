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
