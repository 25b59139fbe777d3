"""``python -m tui.attach --endpoints A,B,C [--cluster-dir DIR]``: attach mode on its own
(``kv tui --endpoints`` runs the same app)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tui.attach.app import AttachApp


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tui.attach", description=__doc__)
    parser.add_argument("--endpoints", required=True, help="host:port,host:port,...")
    parser.add_argument("--cluster-dir", type=Path, help="the kv cluster's --data-dir")
    args = parser.parse_args(argv)
    endpoints = [e for e in args.endpoints.split(",") if e]
    AttachApp(endpoints, cluster_dir=args.cluster_dir).run()


if __name__ == "__main__":
    main()
