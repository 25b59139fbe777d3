"""Benchmarks: kv beside the real etcd 3.4, in one run, reported as ratios.

One run starts each server in turn (kv, then etcd) with the same etcd member flags on free
loopback ports and a fresh data directory on tmpfs, drives it with the same load (worker
processes, each an asyncio loop with many grpc.aio requests in flight: first random puts, then
linearizable single-key gets), and writes a markdown table of requests per second, latency
percentiles and client/server CPU, with kv's rate as a ratio to etcd's (``docs/performance.md``
explains why ratios). It is a measurement, not a test: nothing asserts on speed.

Run it from the repository root (the defaults take about two minutes on 2 cores)::

    python -m benchmarks.run            # both servers; writes benchmarks/results/chapter1.md
    python -m benchmarks.run --servers etcd --duration 3 --output /tmp/etcd.md
    python -m benchmarks.run --help

Modules:

- `benchmarks.servers`: start and stop a server of either kind, same flags.
- `benchmarks.load`: the worker processes and one measured phase.
- `benchmarks.procstat`: CPU time of a process and of the machine, from /proc.
- `benchmarks.report`: aggregation, the markdown table and its caption, the JSON.
- `benchmarks.run`: the command line.
"""
