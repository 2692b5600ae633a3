"""The real-browser check (tests/browser_check.py) as a test: opt-in, because it runs notebook 00 in JupyterLab
(≈ 1 min on a 2-core CPU). Set TEMPSCALE_BROWSER_CHECK=1; without playwright or Chromium it skips."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from browser_check import SKIPPED, browser_available


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("TEMPSCALE_BROWSER_CHECK") != "1", reason="opt-in: TEMPSCALE_BROWSER_CHECK=1")
def test_explorer_widget_renders_in_jupyterlab(tmp_path):
    missing = browser_available()
    if missing:
        pytest.skip(missing)
    script = Path(__file__).with_name("browser_check.py")
    result = subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], capture_output=True, text=True,
                            timeout=600)
    if result.returncode == SKIPPED:
        pytest.skip(result.stdout.strip())
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "explorer_default.png").stat().st_size > 10_000
    assert (tmp_path / "explorer_tau10.png").stat().st_size > 10_000
