"""Real-browser check: JupyterLab headless, notebook 00 opened in headless Chromium, every cell run, the τ explorer
widget rendered, one slider moved, and screenshots saved.

    python tests/browser_check.py [--out build/browser_check] [--timeout 300]

Exit status 0: the widget rendered and redrew after the slider moved; 77: no browser (playwright or Chromium
missing), nothing checked; 1: the check failed. Playwright cannot download its own browsers here, so it drives the
system Chromium (``$TEMPSCALE_CHROMIUM``, else the first of chromium, chromium-browser, google-chrome on PATH).
The kernel runs under $TEMPSCALE_PROFILE (smoke unless set) and $TEMPSCALE_RUNS, like the tests.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_server import ROOT, running_lab  # noqa: E402

SKIPPED = 77                     # the automake/ctest convention for "skipped"
NOTEBOOK = "00_gradient_analysis.ipynb"
WIDGET = ".jupyter-widgets.widget-vbox"   # the explorer's outer VBox (ipywidgets 8 classes)


def find_chromium() -> str | None:
    explicit = os.environ.get("TEMPSCALE_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return next((path for name in ("chromium", "chromium-browser", "google-chrome")
                 if (path := shutil.which(name))), None)


def browser_available() -> str | None:
    """Why the check cannot run here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None if find_chromium() else "no Chromium found (set TEMPSCALE_CHROMIUM)"


def dismiss_news_prompt(page) -> None:
    """JupyterLab asks once whether to fetch news; answer no so the toast does not cover the screenshots."""
    try:
        page.get_by_role("button", name="No", exact=True).click(timeout=3000)
    except Exception:
        pass   # no prompt shown


def wait_until_redrawn(page, image, before: str, timeout_s: float = 60) -> None:
    """Each key press is one slider change and one redraw: wait until the image differs and has settled."""
    deadline = time.monotonic() + timeout_s
    last = before
    while time.monotonic() < deadline:
        page.wait_for_timeout(1500)
        current = image.get_attribute("src")
        if current != before and current == last:
            return
        last = current
    raise TimeoutError("the explorer's image did not redraw after the slider moved")


def check(out: Path, timeout_s: float) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    env = {"TEMPSCALE_PROFILE": os.environ.get("TEMPSCALE_PROFILE", "smoke")}
    # JupyterLab autosaves what it runs: serve a copy, so the stored notebook keeps no outputs.
    served = Path(tempfile.mkdtemp(prefix="tempscale-lab-"))
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, served / NOTEBOOK)
    with running_lab(env, extra_args=["--LabApp.expose_app_in_browser=True"], notebook_dir=served) as (url, token), \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_s * 1000)
        page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext",
                               timeout=timeout_s * 1000)
        page.evaluate("""async () => {
            const panel = window.jupyterapp.shell.currentWidget;
            await panel.sessionContext.ready;
            await window.jupyterapp.commands.execute('notebook:run-all-cells');
        }""")
        try:
            widget = page.wait_for_selector(WIDGET, timeout=timeout_s * 1000)
        except Exception:
            page.screenshot(path=str(out / "failure.png"))   # what the page showed when the widget never came
            raise
        image = widget.query_selector("img")
        page.wait_for_function("img => img.naturalWidth > 0", arg=image, timeout=60_000)
        dismiss_news_prompt(page)
        widget.scroll_into_view_if_needed()
        widget.screenshot(path=str(out / "explorer_default.png"))
        before = image.get_attribute("src")
        slider = widget.query_selector(".slider-container .noUi-handle, .widget-slider .noUi-handle")
        slider.focus()
        for _ in range(20):                      # log10 τ from 0 to 1 in steps of 0.05: τ = 1 → 10
            page.keyboard.press("ArrowRight")
        wait_until_redrawn(page, image, before)
        widget.screenshot(path=str(out / "explorer_tau10.png"))
        page.screenshot(path=str(out / "lab_page.png"))
        browser.close()
    print(f"widget rendered and redrawn; screenshots in {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "browser_check")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for the notebook to run")
    args = parser.parse_args()
    missing = browser_available()
    if missing:
        print(f"skipped: {missing}")
        return SKIPPED
    check(args.out, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
