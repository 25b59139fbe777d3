"""``kv docs`` serves the book with its code, and each chapter says where to read it so.

A ``chapter.md`` read on its own (on GitHub, say) shows include lines where the site shows
code; its top says so, and the site's page for it leaves that note out.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kv.cli import docs as docs_command

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((REPO_ROOT / "chapters").glob("*/chapter.md"))
NOTE_START = "> **Read this chapter with its code**"
#: mkdocs builds the whole site before it serves: generous for a loaded machine.
SERVE_DEADLINE = 60.0
#: ``--8<-- "path:1:2,7:"``: the lines of ``path`` a page includes.
INCLUDE = re.compile(r'^--8<-- "(?P<path>[^":]+):(?P<ranges>[0-9:,]+)"$')

pytestmark = pytest.mark.skipif(
    docs_command.missing_tools() != [], reason="needs the docs extra: pip install -e '.[docs]'"
)


def included_lines(wrapper: Path) -> list[str]:
    """The lines of its chapter that a ``docs/chapters/*.md`` page includes."""
    match = INCLUDE.match(wrapper.read_text().strip())
    assert match, f"{wrapper} is not one include line"
    lines = (REPO_ROOT / match["path"]).read_text().splitlines()
    chosen: list[str] = []
    for part in match["ranges"].split(","):
        start, _, end = part.partition(":")
        chosen += lines[int(start) - 1 : int(end) if end else None]
    return chosen


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.parent.name)
def test_a_chapter_says_at_its_top_to_read_it_with_its_code_through_kv_docs(
    chapter: Path,
) -> None:
    lines = chapter.read_text().splitlines()
    assert lines[0].startswith("# Chapter ")
    assert lines[2].startswith(NOTE_START)
    note = " ".join(line for line in lines[2:5])
    assert "`kv docs`" in note and "http://127.0.0.1:8000/" in note


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.parent.name)
def test_the_site_page_of_a_chapter_is_all_of_it_but_that_note(chapter: Path) -> None:
    wrapper = REPO_ROOT / "docs" / "chapters" / f"{chapter.parent.name}.md"
    lines = chapter.read_text().splitlines()
    note_end = lines.index("", 2)  # the note is the block from line 3 to the next blank line
    assert included_lines(wrapper) == lines[:2] + lines[note_end + 1 :]


def test_without_mkdocs_kv_docs_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(docs_command, "missing_tools", lambda: ["mkdocs", "mkdocs-material"])
    code = docs_command.run_docs(argparse.Namespace(dev_addr=docs_command.DEFAULT_ADDRESS))
    assert code == 1
    assert (
        "kv docs: error: kv docs needs mkdocs and mkdocs-material (the docs extra): "
        "run `pip install -e '.[docs]'`" in capsys.readouterr().err
    )


def test_the_missing_tools_are_named_as_pip_installs_them() -> None:
    def only_mkdocs(module: str) -> object | None:
        return object() if module == "mkdocs" else None

    assert docs_command.missing_tools(only_mkdocs) == ["mkdocs-material"]


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            text: str = answer.read().decode()
            return text
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _sigint_as_in_a_terminal() -> None:
    """Give the child the SIGINT of a program started from a terminal.

    A shell starts a background job (``pytest ... &``, ``nohup``) with SIGINT ignored, and its
    children inherit that; a Python started so never raises KeyboardInterrupt, so Ctrl-C could
    not stop kv docs or its mkdocs. A person's terminal sends Ctrl-C to a foreground program
    whose SIGINT does what it does by default.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_kv_docs_serves_a_chapter_with_the_code_it_includes(
    free_port: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    address = f"127.0.0.1:{free_port}"
    log_path = tmp_path / "kv-docs.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kv", "docs", "--dev-addr", address],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,  # kv docs finds the checkout itself, wherever it is run from
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
            start_new_session=True,  # Ctrl-C reaches kv docs and its mkdocs: a process group
            preexec_fn=_sigint_as_in_a_terminal,
        )

    def stop() -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)

    def stop_and_wait() -> None:
        stop()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # leave no server behind a failed test
            raise

    request.addfinalizer(stop_and_wait)
    page = None
    deadline = time.monotonic() + SERVE_DEADLINE
    while page is None and process.poll() is None and time.monotonic() < deadline:
        page = fetch(f"http://{address}/chapters/01-kv-store/")
        time.sleep(0.2)  # polling interval only: readiness is the page answering
    assert page is not None, f"kv docs served nothing:\n{log_path.read_text()}"
    text = re.sub(r"<[^>]+>", "", page)  # the code is highlighted: a span per token
    assert "class Revision:" in text  # kv/mvcc/revision.py, included by chapter 1
    assert "--8&lt;--" not in text
    assert "Read this chapter with its code" not in text
    stop()
    assert process.wait(10) == 0
