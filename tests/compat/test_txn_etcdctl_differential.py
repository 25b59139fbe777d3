"""``etcdctl txn``, kv beside the real etcd: the request read from stdin (plain and ``-i``),
the answer as JSON and as text, and the errors etcdctl shows (chapter 6).

etcdctl reads three blocks, each ended by an empty line: compares (``value("k") = "v"``,
``version``, ``create``, ``mod``), then the success requests, then the failure requests (each a
``get``/``put``/``del`` command line with its flags). ``-i`` prints a prompt before each block.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.compat.etcdctl import EtcdctlResult, etcdctl
from tests.compat.normalise import normalise_result
from tests.compat.scenario import (
    ScenarioMismatch,
    ServerPair,
    StartPair,
    mismatch_message,
    render_result,
    run_scenario,
)
from tests.compat.servers import ServerOptions

pytestmark = pytest.mark.etcd


def txn_script(compares: Sequence[str], success: Sequence[str], failure: Sequence[str]) -> str:
    """What etcdctl txn reads: three blocks, each ended by an empty line."""
    return "".join(
        "".join(f"{line}\n" for line in block) + "\n" for block in (compares, success, failure)
    )


def run_txn(pair: ServerPair, script: str, *flags: str) -> EtcdctlResult:
    """``etcdctl txn FLAGS`` with ``script`` on stdin, on both servers; the outputs must match."""
    __tracebackhide__ = True
    args = ["txn", *flags]
    ref = normalise_result(etcdctl(pair.reference.endpoint, args, stdin=script), pair.reference)
    sub = normalise_result(etcdctl(pair.subject.endpoint, args, stdin=script), pair.subject)
    if ref != sub:
        title = f"etcdctl {' '.join(args)} <<< {script!r}"
        raise ScenarioMismatch(
            mismatch_message(pair, title, render_result(ref), render_result(sub))
        )
    return ref


def setup(pair: ServerPair) -> None:
    run_scenario(pair, [["put", "a", "1"], ["put", "b", "2"], ["put", "a", "3"]])


def test_compare_and_swap_takes_the_success_branch_at_one_revision(pair: ServerPair) -> None:
    setup(pair)
    done = run_txn(
        pair,
        txn_script(
            ['value("a") = "3"', 'mod("a") > "2"'], ["put a 4 --prev-kv", "get a"], ["get b"]
        ),
    )
    assert done.exit_code == 0
    assert done.output["succeeded"] is True and done.output["header"]["revision"] == 5
    run_scenario(pair, [["get", "a"], ["get", "a", "--rev=4"]])


def test_a_failed_compare_runs_the_failure_branch(pair: ServerPair) -> None:
    setup(pair)
    failed = run_txn(
        pair,
        txn_script(['version("a") = "1"'], ["put a x"], ["put c 1 --prev-kv", "del b --prev-kv"]),
    )
    assert "succeeded" not in failed.output  # false, so left out of etcdctl's JSON
    run_scenario(pair, [["get", "", "--from-key"]])


def test_every_compare_target_and_relation(pair: ServerPair) -> None:
    setup(pair)
    for target, operand in (
        ("value", '"3"'),
        ("version", '"2"'),
        ("create", '"2"'),
        ("mod", '"4"'),
    ):
        for relation in ("=", "!=", ">", "<"):
            for key in ("a", "missing"):
                run_txn(
                    pair,
                    txn_script([f'{target}("{key}") {relation} {operand}'], ["get a"], ["get b"]),
                )


def test_the_text_output_says_success_or_failure_and_prints_each_answer(pair: ServerPair) -> None:
    setup(pair)
    for compare in ('value("a") = "3"', 'value("a") = "1"'):
        result = run_txn(
            pair,
            txn_script([compare], ["get a", "put c 1", "del b"], ["get b --print-value-only"]),
            "-w",
            "simple",
        )
        assert result.output.splitlines()[0] in ("SUCCESS", "FAILURE")


def test_interactive_mode_prompts_for_each_block(pair: ServerPair) -> None:
    setup(pair)
    result = run_txn(
        pair, txn_script(['create("a") > "0"'], ["get a --prefix"], []), "-i", "-w", "simple"
    )
    assert result.output.splitlines()[:3] == [
        "compares:",
        "success requests (get, put, del):",
        "failure requests (get, put, del):",
    ]


def test_prefix_and_range_operations(pair: ServerPair) -> None:
    setup(pair)
    run_txn(pair, txn_script([], ["get a c", "del a --prefix --prev-kv", "get '' --from-key"], []))
    run_scenario(pair, [["get", "", "--from-key"]])


def test_a_txn_without_compares_or_writes_keeps_the_revision(pair: ServerPair) -> None:
    setup(pair)
    empty = run_txn(pair, txn_script([], [], []))
    reads = run_txn(pair, txn_script([], ["get a", "get b --consistency=s"], []))
    assert empty.output["header"]["revision"] == reads.output["header"]["revision"] == 4


def test_duplicate_keys_are_refused(pair: ServerPair) -> None:
    result = run_txn(pair, txn_script([], ["put b 1", "put b 2"], []))
    assert result.exit_code != 0
    assert "Error: etcdserver: duplicate key given in txn request" in result.stderr
    run_txn(pair, txn_script([], ["del a --prefix", "put ab 1"], []))
    run_txn(pair, txn_script([], [], ["del a c", "del b d", "put e 1"]))


def test_max_txn_ops_limits_each_list(start_pair: StartPair) -> None:
    pair = start_pair(ServerOptions(extra_flags=("--max-txn-ops=2",)))
    fits = run_txn(pair, txn_script(['version("a") = "0"'] * 2, ["put a 1", "put b 1"], ["get a"]))
    refused = run_txn(pair, txn_script([], [], ["get a", "get b", "get c"]))
    assert fits.exit_code == 0
    assert "Error: etcdserver: too many operations in txn request" in refused.stderr


def test_a_malformed_compare_is_refused_by_etcdctl(pair: ServerPair) -> None:
    """etcdctl refuses it before sending anything: the same on both servers."""
    result = run_txn(pair, txn_script(['mod("a") > "x"'], [], []))
    assert result.exit_code != 0
