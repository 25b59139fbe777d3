"""The command-line arguments every benchmark shares: which servers, and the load.

``python -m benchmarks.run``, ``benchmarks.chapter2``, ``benchmarks.profile`` and
``benchmarks.cluster`` all drive a server with the same load generator (`benchmarks.load`), so
they take the same flags for it, with the same defaults, from here::

    parser = argparse.ArgumentParser(...)
    add_servers_argument(parser)
    add_load_arguments(parser)
    args = parser.parse_args(argv)
    check_load_arguments(parser, args)
    workload = load_workload(args, "put", endpoint)
"""

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

from benchmarks.load import CLIENT_KINDS, ClientKind, Operation, Workload
from benchmarks.servers import SERVER_KINDS, SOURCES, ServerKind


def servers_list(text: str) -> list[ServerKind]:
    """``--servers``: a comma-separated list of server kinds, each once, in the order given."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVER_KINDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(SERVER_KINDS)}")
    return [cast(ServerKind, name) for name in dict.fromkeys(names)]


def add_servers_argument(parser: argparse.ArgumentParser) -> None:
    """``--servers kv,etcd``: which servers to run, one after the other."""
    parser.add_argument(
        "--servers", type=servers_list, default=list(SERVER_KINDS), help="comma-separated: kv,etcd"
    )


def add_sources_argument(parser: argparse.ArgumentParser) -> None:
    """``--sources head|worktree|live``: which kv the servers run (`servers.kv_sources`)."""
    parser.add_argument(
        "--sources",
        choices=SOURCES,
        default="head",
        help="which kv the servers run: head, the committed one (copied when the run starts, "
        "so every member runs the same code even if the working tree changes meanwhile); "
        "worktree, a copy of the working tree as it is when the run starts; live, the "
        "checkout itself",
    )


def add_load_arguments(
    parser: argparse.ArgumentParser,
    *,
    duration_help: str = "seconds measured per phase",
    warmup_help: str = "seconds before measuring",
) -> None:
    """The load's flags: how long, how many requests in flight, from how many processes and
    connections, what is written, through which client, from which seed."""
    parser.add_argument("--duration", type=float, default=10.0, help=duration_help)
    parser.add_argument("--warmup", type=float, default=2.0, help=warmup_help)
    parser.add_argument("--clients", type=int, default=64, help="requests in flight in all")
    parser.add_argument("--processes", type=int, default=2, help="load worker processes")
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels per process")
    parser.add_argument("--value-size", type=int, default=256, help="bytes per value")
    parser.add_argument("--keys", type=int, default=10_000, help="size of the key space")
    parser.add_argument(
        "--client",
        choices=CLIENT_KINDS,
        default="kv",
        help="kv: the project's KVClient; stub: bare generated stubs, requests built up front",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of keys, values and choices")


def add_report_arguments(
    parser: argparse.ArgumentParser, default_output: Path, *, quick_help: str | None = None
) -> None:
    """Where the tables go (``--output``), lines for the caption (``--note``), and, given
    ``quick_help``, ``--quick`` (see `apply_quick`)."""
    if quick_help is not None:
        parser.add_argument(
            "--quick", action="store_true", help=f"{quick_help} (explicit flags still win)"
        )
    parser.add_argument("--output", type=Path, default=default_output, help="markdown tables")
    parser.add_argument(
        "--note", action="append", default=[], help="a line to add to the caption (repeatable)"
    )


def apply_quick(
    args: argparse.Namespace, argv: Sequence[str], settings: Mapping[str, object]
) -> None:
    """Under ``--quick``, set each of ``settings`` (field -> value) the command line did not
    give explicitly."""
    if not args.quick:
        return
    given = {arg.split("=")[0] for arg in argv}
    for field, value in settings.items():
        if "--" + field.replace("_", "-") not in given:
            setattr(args, field, value)


def load_parameters(args: argparse.Namespace) -> dict[str, object]:
    """The load flags' values, as a run's caption and JSON record them."""
    return {
        "servers": args.servers,
        "duration": args.duration,
        "warmup": args.warmup,
        "clients": args.clients,
        "processes": args.processes,
        "channels": args.channels,
        "value_size": args.value_size,
        "keys": args.keys,
        "client": args.client,
        "seed": args.seed,
    }


def check_load_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a load that cannot run (exits with a usage error, like argparse does)."""
    if min(args.clients, args.processes, args.channels, args.keys) < 1:
        parser.error("--clients, --processes, --channels and --keys must be at least 1")
    if args.clients < args.processes:
        parser.error("--clients must be at least --processes")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be positive and --warmup not negative")


def load_workload(
    args: argparse.Namespace,
    operation: Operation,
    endpoint: str,
    *,
    alone: bool = False,
    serializable: bool = False,
) -> Workload:
    """The `Workload` the load flags describe, for ``operation`` on ``endpoint``.

    ``alone``: one request in flight from one process on one channel (the latency of a single
    request, nothing to batch it with) instead of ``--clients`` from ``--processes``.
    """
    return Workload(
        operation=operation,
        endpoint=endpoint,
        keys=args.keys,
        value_size=args.value_size,
        clients=1 if alone else args.clients,
        processes=1 if alone else args.processes,
        channels=1 if alone else args.channels,
        warmup=args.warmup,
        duration=args.duration,
        client=cast(ClientKind, args.client),
        seed=args.seed,
        serializable=serializable,
    )
