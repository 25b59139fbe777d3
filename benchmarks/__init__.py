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

Chapter 2 (the durable single node) has a run of its own, on a real disk: durable puts, fsyncs
per write, restart with a million keys (about 12 minutes; ``--quick`` about 2); and a profile
of kv's put path::

    python -m benchmarks.chapter2     # writes benchmarks/results/chapter2.md
    python -m benchmarks.profile      # writes benchmarks/results/chapter2-profile.md

They use Debian's ``strace`` and ``linux-perf`` and PyPI's ``py-spy`` where installed
(``apt-get install strace linux-perf``, ``pip install py-spy``), and say so where not.

From chapter 4 on, kv forms Raft clusters with etcd's flags, and a third run compares
three-member clusters (about six minutes; ``--quick`` about two): puts and linearizable and
serializable ranges to the leader and to a follower, the members' own counters over the put
windows, and the time from killing the leader to the first committed write; the profile has
a cluster mode that samples the leader and a follower::

    python -m benchmarks.cluster                # writes benchmarks/results/cluster.md
    python -m benchmarks.profile --members 3    # writes benchmarks/results/cluster-profile.md

Chapters 6-8's features have a run of their own, on one member and on three (about six
minutes; ``--quick`` under four): watch fan-out (puts with and without 1,000 watchers of their
prefix, events delivered per second), lease keep-alives per second, compare-and-swap Txns on a
few hot keys and on many (with their success rate)::

    python -m benchmarks.features               # writes benchmarks/results/features.md

Modules:

- `benchmarks.servers`: start and stop a server of either kind, same flags (optionally under
  another command, or again on a stopped one's data).
- `benchmarks.clusters`: start a cluster of either kind, same flags; find its leader, kill a
  member, restart it.
- `benchmarks.arguments`: the command-line flags of the load, shared by every run.
- `benchmarks.load`: the worker processes and one measured phase (or several loads in one).
- `benchmarks.calls`: the requests a load makes: puts, ranges, compare-and-swap Txns, lease
  keep-alives, a Watch stream's events.
- `benchmarks.procstat`: CPU time and memory of a process and CPU of the machine, from /proc.
- `benchmarks.report`: aggregation, the markdown table and its caption, the JSON.
- `benchmarks.run`: the command line (chapter 1's run).
- `benchmarks.chapter2`: chapter 2's run; `benchmarks.chapter2_report`: its tables.
- `benchmarks.fsyncs`: sync calls counted with strace, the servers' own fsync counters, a probe
  of the disk's fdatasync.
- `benchmarks.kv_counters`: ``kv serve`` printing its own counters on SIGUSR1 (log fsyncs,
  the time spent in each step of its Raft loop).
- `benchmarks.restart`: load many keys, restart, time it, read the memory.
- `benchmarks.profile`: perf and py-spy on kv's server under put load (or on a cluster's
  leader and a follower); `benchmarks.samplers`: the two profilers and how their samples are
  sorted.
- `benchmarks.cluster`: the three-member run; `benchmarks.cluster_report`: what it measured
  and its tables.
- `benchmarks.failover`: the leader-kill test.
- `benchmarks.features`: chapters 6-8's run (watches, leases, transactions) and its table.
"""
