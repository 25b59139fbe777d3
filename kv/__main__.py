"""``python -m kv``: the same as the ``kv`` command (chapter 1)."""

from kv.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
