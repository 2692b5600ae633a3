"""`./run_all.sh lab`'s server: JupyterLab starts, serves the notebooks and the project kernel, and stops."""
import urllib.request

import pytest

from lab_server import get_json, running_lab

pytest.importorskip("jupyterlab")


@pytest.mark.slow
def test_lab_serves_the_notebooks_and_the_project_kernel():
    with running_lab() as (url, token):
        listing = get_json(f"{url}/api/contents/", token)
        names = {item["name"] for item in listing["content"]}
        assert {"00_gradient_analysis.ipynb", "11_calibration.ipynb"} <= names
        specs = get_json(f"{url}/api/kernelspecs", token)
        assert "tempscale" in specs["kernelspecs"], f"project kernel missing: {sorted(specs['kernelspecs'])}"
        assert specs["kernelspecs"]["tempscale"]["spec"]["display_name"] == "Python (tempscale)"
        notebook = get_json(f"{url}/api/contents/00_gradient_analysis.ipynb", token)
        assert notebook["content"]["metadata"]["kernelspec"]["name"] == "tempscale"
        request = urllib.request.Request(f"{url}/lab", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=10) as page:
            assert page.status == 200 and b"JupyterLab" in page.read()
