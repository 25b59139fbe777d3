"""``kv docs``: build the book's site and serve it on this machine, code listings included
(chapter 1).

The chapters' ``chapter.md`` files show their code as include lines (``--8<-- "kv/x.py:name"``):
the listings are cut from the source when the site is built, by mkdocs-material's snippets
extension. So a reader reads a chapter with its code on the built site, and ``kv docs`` is the
one command for it: ``mkdocs serve`` from the checkout's root (where ``mkdocs.yml`` is, and
where the include paths start), which builds the site, serves it on
http://127.0.0.1:8000/ and rebuilds it when a chapter or a source file changes.

mkdocs-material is the ``docs`` extra (``pip install -e '.[docs]'``); without it, ``kv docs``
says what to install rather than failing with a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import kv

#: Where ``mkdocs serve`` listens unless told otherwise (mkdocs' own default).
DEFAULT_ADDRESS = "127.0.0.1:8000"
#: The packages the site is built with: (module to import, pip package).
DOCS_TOOLS = (("mkdocs", "mkdocs"), ("material", "mkdocs-material"))
INSTALL_HINT = "pip install -e '.[docs]'"


class DocsError(RuntimeError):
    """``kv docs`` cannot run: the message says what to do."""


def checkout_root() -> Path:
    """The repository kv runs from (an editable install): the folder with ``mkdocs.yml``.

    Raises:
        DocsError: kv was installed from a wheel, without the book's sources.
    """
    root = Path(kv.__file__).resolve().parents[1]
    if not (root / "mkdocs.yml").is_file():
        raise DocsError(
            f"kv docs needs the repository's sources (no mkdocs.yml in {root}): clone it and "
            f"run `{INSTALL_HINT}` there"
        )
    return root


def missing_tools(
    find_spec: Callable[[str], object | None] = importlib.util.find_spec,
) -> list[str]:
    """The pip packages of `DOCS_TOOLS` that this Python cannot import."""
    return [package for module, package in DOCS_TOOLS if find_spec(module) is None]


def mkdocs_argv(address: str) -> list[str]:
    """``mkdocs serve`` with this Python (so the same environment's mkdocs runs)."""
    return [sys.executable, "-m", "mkdocs", "serve", "--dev-addr", address]


def add_docs_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    docs = commands.add_parser(
        "docs",
        help="build the book's site and serve it locally (the chapters with their code)",
        description="Build the site (the chapters with their code listings, the performance "
        "page, the reference) and serve it on this machine until Ctrl-C; it is rebuilt when "
        f"a file changes. Needs the docs extra: {INSTALL_HINT}.",
        allow_abbrev=False,
    )
    docs.add_argument(
        "--dev-addr",
        default=DEFAULT_ADDRESS,
        metavar="HOST:PORT",
        help=f"where to serve the site (default {DEFAULT_ADDRESS})",
    )


def run_docs(args: argparse.Namespace) -> int:
    """``kv docs``: mkdocs' exit code; 1 with what to install if mkdocs is missing."""
    try:
        root = checkout_root()
        missing = missing_tools()
        if missing:
            raise DocsError(
                f"kv docs needs {' and '.join(missing)} (the docs extra): run `{INSTALL_HINT}` "
                f"in {root} (with the Quickstart's virtual environment: .venv/bin/pip)"
            )
    except DocsError as error:
        print(f"kv docs: error: {error}", file=sys.stderr)
        return 1
    print(f"kv docs: building the site; then open http://{args.dev_addr}/ (Ctrl-C stops)")
    try:
        return subprocess.run(mkdocs_argv(args.dev_addr), cwd=root, check=False).returncode
    except KeyboardInterrupt:
        return 0
