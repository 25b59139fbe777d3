"""The site draws its diagrams with the mermaid it ships, with no network: checked in a browser.

The test builds the site, serves it on a free loopback port, and loads chapter 1's page in
headless Chromium with every host name but the loopback's made unresolvable, so mkdocs-material
cannot fall back on its CDN copy of mermaid: a diagram that renders as SVG was drawn by the
vendored copy (``docs/vendor/fetch-mermaid``).

mkdocs-material puts each rendered diagram in a *closed* shadow root, which no page script and
no DOM dump can see into. The served copy of the page gets a probe, first in its ``<head>``: it
opens the shadow roots the page makes, and records on ``<html>`` how many diagrams hold an SVG.
The site itself is unchanged. Skipped when Chromium is absent (Debian: ``apt-get install -y
chromium``); ``.ci/run`` installs it.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kv.cli import docs as docs_command

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE = "chapters/01-kv-store/index.html"
#: How much page time (virtual: Chromium skips idle waits) the diagrams may take to render.
VIRTUAL_TIME_MS = 20_000

PROBE = """<script>
(function () {
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    return attach.call(this, Object.assign({}, init, { mode: "open" }));
  };
  setInterval(function () {
    const drawn = Array.from(document.querySelectorAll("div.mermaid")).filter(
      (d) => d.shadowRoot && d.shadowRoot.querySelector("svg"));
    document.documentElement.setAttribute("data-diagrams-drawn", String(drawn.length));
  }, 50);
})();
</script>"""

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install -y chromium"),
    pytest.mark.skipif(
        docs_command.missing_tools() != [], reason="needs the docs extra: pip install -e '.[docs]'"
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The built site, with the probe in chapter 1's page, served on a free port: its URL."""
    site_dir = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", site_dir],
        cwd=REPO_ROOT,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    page = site_dir / PAGE
    page.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    handler = functools.partial(QuietHandler, directory=str(site_dir))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:  # a free port
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_address[1]}/"
        server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def rendered_dom(url: str, profile: Path) -> str:
    """The page's DOM once its scripts ran, from headless Chromium without the Internet."""
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # the tests run as root in CI
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            # Nothing resolves but the loopback: the CDN copy of mermaid cannot load.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--virtual-time-budget={VIRTUAL_TIME_MS}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_a_chapter_diagram_renders_as_svg_offline(site: str, tmp_path: Path) -> None:
    source = (REPO_ROOT / "chapters" / "01-kv-store" / "chapter.md").read_text()
    diagrams = len(re.findall(r"^```mermaid$", source, re.MULTILINE))
    assert diagrams >= 1
    dom = rendered_dom(site + PAGE, tmp_path / "chromium-profile")
    drawn = re.search(r'data-diagrams-drawn="(\d+)"', dom)
    assert drawn is not None, "the page's scripts did not run"
    assert int(drawn[1]) == diagrams
