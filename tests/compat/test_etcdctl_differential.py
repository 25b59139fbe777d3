"""The real etcdctl, ``-w json``, against the real etcd 3.4 and against kv: outputs must match.

Each test is one behaviour of etcd, named for it. The scenario runs step by step on a fresh etcd
and a fresh subject (both at revision 1); every step's normalised exit code, stdout and stderr
must be equal. A few assertions on etcd's own answer then state the behaviour outright, so that
each test also reads as a specification (and cannot pass by two servers agreeing on nothing).

Run: ``pytest tests/compat`` (subject kv) or ``KV_COMPAT_SUBJECT=etcd pytest tests/compat``.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.compat.etcdctl import EtcdctlResult
from tests.compat.scenario import ServerPair, StartPair, Step, run_scenario
from tests.compat.servers import ServerOptions

pytestmark = pytest.mark.etcd

COMPACTED = "Error: etcdserver: mvcc: required revision has been compacted"
FUTURE = "Error: etcdserver: mvcc: required revision is a future revision"


def keys(result: EtcdctlResult) -> list[str]:
    """The keys of a `get` result, decoded."""
    return [base64.b64decode(kv["key"]).decode() for kv in result.output.get("kvs", [])]


def values(result: EtcdctlResult) -> list[str]:
    return [base64.b64decode(kv.get("value", "")).decode() for kv in result.output.get("kvs", [])]


def header_revision(result: EtcdctlResult) -> Any:
    return result.output["header"].get("revision")


# --- put, get, del ---------------------------------------------------------------------------


def test_put_get_delete_round_trip(pair: ServerPair) -> None:
    """A put is readable, a delete removes it, a delete that matches nothing adds no revision."""
    r = run_scenario(
        pair,
        [
            ["put", "foo", "bar"],
            ["get", "foo"],
            ["get", "foo", "--consistency=s"],
            ["del", "foo"],
            ["get", "foo"],
            ["del", "foo"],
            ["get", "missing"],
        ],
    )
    assert header_revision(r[0]) == 2
    assert values(r[1]) == ["bar"]
    assert r[3].output["deleted"] == 1
    assert "deleted" not in r[5].output and header_revision(r[5]) == 3
    assert "kvs" not in r[6].output and "count" not in r[6].output


def test_get_prefix_returns_only_keys_under_the_prefix(pair: ServerPair) -> None:
    """``--prefix`` reads [prefix, prefix+1); an empty prefix reads every key."""
    writes: list[Step] = [["put", k, k.upper()] for k in ["a", "a/1", "a/2", "ab", "b", "b/1"]]
    r = run_scenario(
        pair,
        [*writes, ["get", "a/", "--prefix"], ["get", "a", "--prefix"], ["get", "", "--prefix"]],
    )
    assert keys(r[6]) == ["a/1", "a/2"]
    assert keys(r[7]) == ["a", "a/1", "a/2", "ab"]
    assert keys(r[8]) == ["a", "a/1", "a/2", "ab", "b", "b/1"]


def test_get_from_key_returns_keys_greater_or_equal(pair: ServerPair) -> None:
    """``--from-key`` reads every key >= the key (range_end ``\\0``); ``""`` means all keys."""
    writes: list[Step] = [["put", k, "v"] for k in ["a", "b", "ba", "c"]]
    r = run_scenario(
        pair,
        [
            *writes,
            ["get", "b", "--from-key"],
            ["get", "bb", "--from-key"],
            ["get", "", "--from-key", "--keys-only"],
            ["get", "z", "--from-key"],
        ],
    )
    assert keys(r[4]) == ["b", "ba", "c"]
    assert keys(r[5]) == ["c"]
    assert keys(r[6]) == ["a", "b", "ba", "c"]
    assert "kvs" not in r[7].output


def test_get_limit_cuts_the_result_sets_more_and_counts_all(pair: ServerPair) -> None:
    """``--limit N`` returns N pairs, ``more`` true when cut, ``count`` = all keys in the range."""
    writes: list[Step] = [["put", f"k{i}", f"v{i}"] for i in range(5)]
    r = run_scenario(
        pair,
        [
            *writes,
            ["get", "k", "--prefix", "--limit=2"],
            ["get", "k", "--prefix", "--limit=5"],
            ["get", "k", "--prefix", "--limit=6"],
            ["get", "k", "--prefix", "--limit=0"],
            ["get", "k", "--prefix", "--limit=-1"],
        ],
    )
    assert keys(r[5]) == ["k0", "k1"]
    assert r[5].output["more"] is True and r[5].output["count"] == 5
    assert "more" not in r[6].output and r[6].output["count"] == 5
    assert len(keys(r[8])) == 5


# Writes that leave ties in VERSION and VALUE, and orders that differ per target:
#   key  create  mod  version  value
#   s/a     3     5      2       1
#   s/b     4     4      1       1
#   s/c     2     7      2       2
#   s/d     6     6      1       2
SORT_DATA: list[Step] = [
    ["put", "s/c", "2"],
    ["put", "s/a", "3"],
    ["put", "s/b", "1"],
    ["put", "s/a", "1"],
    ["put", "s/d", "2"],
    ["put", "s/c", "2"],
]


@pytest.mark.parametrize("target", ["KEY", "VERSION", "CREATE", "MODIFY", "VALUE"])
def test_get_sort_by_target_in_each_order(pair: ServerPair, target: str) -> None:
    """``--sort-by`` with ASCEND, DESCEND and no ``--order`` (ascending); the server sorts all
    matching keys and only then applies ``--limit``. Ties keep etcd's order exactly."""
    reads: list[Step] = [
        ["get", "s/", "--prefix", f"--sort-by={target}"],
        ["get", "s/", "--prefix", f"--sort-by={target}", "--order=ASCEND"],
        ["get", "s/", "--prefix", f"--sort-by={target}", "--order=DESCEND"],
        ["get", "s/", "--prefix", f"--sort-by={target}", "--order=DESCEND", "--limit=2"],
        ["get", "s/", "--prefix", f"--sort-by={target}", "--order=ASCEND", "--keys-only"],
    ]
    r = run_scenario(pair, [*SORT_DATA, *reads])
    expected_ascending = {
        "KEY": ["s/a", "s/b", "s/c", "s/d"],
        "CREATE": ["s/c", "s/a", "s/b", "s/d"],
        "MODIFY": ["s/b", "s/a", "s/d", "s/c"],
    }
    if target in expected_ascending:  # no ties: descending is the exact reverse
        assert keys(r[6]) == keys(r[7]) == expected_ascending[target]
        assert keys(r[8]) == expected_ascending[target][::-1]
        assert keys(r[9]) == expected_ascending[target][::-1][:2]


def test_get_order_without_sort_by_sorts_by_key(pair: ServerPair) -> None:
    """``--order`` alone sorts by key; DESCEND with ``--limit`` returns the last keys."""
    r = run_scenario(
        pair,
        [
            *SORT_DATA,
            ["get", "s/", "--prefix", "--order=DESCEND"],
            ["get", "s/", "--prefix", "--order=ASCEND"],
            ["get", "s/", "--prefix", "--order=DESCEND", "--limit=1"],
        ],
    )
    assert keys(r[6]) == ["s/d", "s/c", "s/b", "s/a"]
    assert keys(r[8]) == ["s/d"]


def test_get_keys_only_omits_values(pair: ServerPair) -> None:
    """``--keys-only`` returns keys and revisions but no values."""
    r = run_scenario(
        pair,
        [["put", "k1", "v1"], ["put", "k2", "v2"], ["get", "k", "--prefix", "--keys-only"]],
    )
    assert keys(r[2]) == ["k1", "k2"]
    assert all("value" not in kv for kv in r[2].output["kvs"])


# --- history -----------------------------------------------------------------------------------


def test_get_rev_reads_history_with_current_header_revision(pair: ServerPair) -> None:
    """``--rev N`` reads the store as of N (including deleted generations); the header still
    carries the current revision."""
    r = run_scenario(
        pair,
        [
            ["put", "k", "v1"],  # rev 2
            ["put", "k", "v2"],  # rev 3
            ["put", "j", "w"],  # rev 4
            ["del", "k"],  # rev 5
            ["put", "k", "v3"],  # rev 6
            *[["get", "k", f"--rev={n}"] for n in range(1, 7)],
            ["get", "", "--prefix", "--rev=4"],
            ["get", "k", "--rev=0"],
        ],
    )
    assert [values(x) for x in r[5:11]] == [[], ["v1"], ["v2"], ["v2"], [], ["v3"]]
    assert all(header_revision(x) == 6 for x in r[5:11])
    assert keys(r[11]) == ["j", "k"]


def test_put_prev_kv_returns_the_replaced_pair(pair: ServerPair) -> None:
    """``put --prev-kv``: nothing on a create, the old pair on an overwrite."""
    r = run_scenario(
        pair, [["put", "k", "v1", "--prev-kv"], ["put", "k", "v2", "--prev-kv"], ["get", "k"]]
    )
    assert "prev_kv" not in r[0].output
    assert base64.b64decode(r[1].output["prev_kv"]["value"]) == b"v1"


def test_del_prev_kv_returns_the_deleted_pairs(pair: ServerPair) -> None:
    """``del --prev-kv`` returns every deleted pair as it was."""
    r = run_scenario(
        pair,
        [
            ["put", "p/1", "a"],
            ["put", "p/2", "b"],
            ["del", "p/1", "--prev-kv"],
            ["del", "p/", "--prefix", "--prev-kv"],
            ["del", "p/", "--prefix", "--prev-kv"],
        ],
    )
    assert len(r[3].output["prev_kvs"]) == 1
    assert "prev_kvs" not in r[4].output


def test_del_prefix_deletes_all_at_one_revision(pair: ServerPair) -> None:
    """``del --prefix`` reports the deleted count and uses one revision for all of them."""
    r = run_scenario(
        pair,
        [
            *[["put", f"d/{i}", "x"] for i in range(3)],
            ["put", "e", "x"],
            ["del", "d/", "--prefix"],
            ["get", "", "--prefix", "--keys-only"],
            ["del", "", "--prefix"],
            ["get", "", "--prefix"],
        ],
    )
    assert r[4].output["deleted"] == 3 and header_revision(r[4]) == 6
    assert keys(r[5]) == ["e"]
    assert r[6].output["deleted"] == 1


def test_recreate_after_delete_starts_a_new_generation(pair: ServerPair) -> None:
    """A key re-created after a delete gets a new create_revision and version 1."""
    r = run_scenario(
        pair,
        [["put", "k", "a"], ["put", "k", "b"], ["del", "k"], ["put", "k", "c"], ["get", "k"]],
    )
    kv = r[4].output["kvs"][0]
    assert (kv["create_revision"], kv["mod_revision"], kv["version"]) == (5, 5, 1)


def test_put_same_value_again_bumps_version_and_revision(pair: ServerPair) -> None:
    """Putting an unchanged value is still a write: new revision, version + 1."""
    r = run_scenario(pair, [["put", "k", "same"], ["put", "k", "same"], ["get", "k"]])
    kv = r[2].output["kvs"][0]
    assert (kv["create_revision"], kv["mod_revision"], kv["version"]) == (2, 3, 2)


# --- compaction and revision errors ----------------------------------------------------------

HISTORY: list[Step] = [
    ["put", "k", "v1"],  # rev 2
    ["put", "k", "v2"],  # rev 3
    ["put", "k", "v3"],  # rev 4
    ["put", "j", "w1"],  # rev 5
]


def test_compaction_makes_revisions_below_it_unreadable(pair: ServerPair) -> None:
    """After ``compaction 3``: ``--rev 2`` is compacted (OutOfRange), ``--rev 3`` is readable."""
    r = run_scenario(
        pair,
        [
            *HISTORY,
            ["compaction", "3"],
            ["get", "k", "--rev=2"],
            ["get", "k", "--rev=3"],
            ["get", "k", "--rev=4"],
            ["get", "k"],
        ],
    )
    assert r[4].output == "compacted revision 3"  # plain text even with -w json
    assert (r[5].exit_code, r[5].stderr) == (1, COMPACTED)
    assert values(r[6]) == ["v2"]


def test_get_future_revision_is_an_error(pair: ServerPair) -> None:
    """``--rev`` above the current revision: OutOfRange, ``required revision is a future
    revision``; a negative ``--rev`` reads the current revision."""
    r = run_scenario(
        pair, [*HISTORY, ["get", "k", "--rev=6"], ["get", "k", "--rev=5"], ["get", "k", "--rev=-1"]]
    )
    assert (r[4].exit_code, r[4].output, r[4].stderr) == (1, "", FUTURE)
    assert values(r[6]) == ["v3"]


def test_compaction_twice_at_the_same_revision_is_an_error(pair: ServerPair) -> None:
    """Compacting at or below the current compaction revision fails as compacted."""
    r = run_scenario(
        pair,
        [*HISTORY, ["compaction", "3"], ["compaction", "3"], ["compaction", "2"]],
    )
    assert (r[5].exit_code, r[5].stderr) == (1, COMPACTED)
    assert (r[6].exit_code, r[6].stderr) == (1, COMPACTED)


def test_compaction_in_the_future_is_an_error(pair: ServerPair) -> None:
    """Compacting above the current revision fails as a future revision; current is allowed."""
    r = run_scenario(pair, [*HISTORY, ["compaction", "6"], ["compaction", "5"]])
    assert (r[4].exit_code, r[4].stderr) == (1, FUTURE)
    assert (r[5].exit_code, r[5].output) == (0, "compacted revision 5")


def test_compaction_of_a_fresh_store_at_revision_one(pair: ServerPair) -> None:
    """A fresh store (revision 1) accepts ``compaction 1``; a second one is compacted."""
    r = run_scenario(pair, [["compaction", "1"], ["compaction", "1"], ["get", "k", "--rev=1"]])
    assert r[0].exit_code == 0
    assert (r[1].exit_code, r[1].stderr) == (1, COMPACTED)
    assert r[2].exit_code == 0


# --- endpoint and member commands --------------------------------------------------------------


def test_endpoint_status_reports_itself_as_leader(pair: ServerPair) -> None:
    """``endpoint status``: a single member is its own leader; the implementation-specific
    fields (see normalise.STATUS_TYPE_ONLY_FIELDS) are present with the right types."""
    r = run_scenario(pair, [["put", "k", "v"], ["endpoint", "status"]])
    status = r[1].output[0]["Status"]
    assert status["leader"] == "<leader=self>"
    assert r[1].output[0]["Endpoint"] == "<client-endpoint>"


def test_endpoint_health_is_true(pair: ServerPair) -> None:
    """``endpoint health`` answers healthy (a linearizable Range of ``health``)."""
    r = run_scenario(pair, [["endpoint", "health"]])
    assert r[0].output == [{"endpoint": "<client-endpoint>", "health": True, "took": "<duration>"}]


HASH_HISTORY: list[Step] = [
    ["put", "a", "1"],  # 2
    ["put", "b", "2"],  # 3
    ["put", "a", "3"],  # 4
    ["del", "b"],  # 5
    ["put", "c", "4"],  # 6
    ["put", "b", "5"],  # 7
    ["del", "", "--prefix"],  # 8
    ["put", "a", "6"],  # 9
]


def test_endpoint_hashkv_after_writes_equals_etcds_hash(pair: ServerPair) -> None:
    """HashKV is a CRC-32C over the stored revisions: the same history gives the same hash,
    with compact_revision -1 before any compaction."""
    r = run_scenario(pair, [["endpoint", "hashkv"], *HASH_HISTORY, ["endpoint", "hashkv"]])
    assert r[-1].output[0]["HashKV"]["compact_revision"] == -1
    assert r[0].output[0]["HashKV"]["hash"] != r[-1].output[0]["HashKV"]["hash"]


def test_endpoint_hashkv_after_physical_compaction(pair: ServerPair) -> None:
    """After ``compaction --physical``, the hash covers only what compaction kept."""
    r = run_scenario(
        pair,
        [
            *HASH_HISTORY,
            ["compaction", "--physical", "6"],
            ["endpoint", "hashkv"],
            ["put", "d", "7"],
            ["compaction", "--physical", "10"],
            ["endpoint", "hashkv"],
        ],
    )
    assert r[9].output[0]["HashKV"]["compact_revision"] == 6
    assert r[12].output[0]["HashKV"]["compact_revision"] == 10


def test_endpoint_hashkv_at_revision(pair: ServerPair) -> None:
    """``hashkv --rev N`` hashes up to N; at or below the compaction revision it is compacted,
    above the current revision it is a future revision (stdout ``[]``, a message per endpoint)."""
    r = run_scenario(
        pair,
        [
            *HASH_HISTORY,
            *[["endpoint", "hashkv", f"--rev={n}"] for n in range(1, 10)],
            ["compaction", "4"],
            ["endpoint", "hashkv", "--rev=4"],
            ["endpoint", "hashkv", "--rev=5"],
            ["endpoint", "hashkv", "--rev=10"],
        ],
    )
    assert len({x.output[0]["HashKV"]["hash"] for x in r[8:17]}) == 9
    assert r[18].exit_code == 1 and r[18].output == []
    assert r[18].stderr == (
        "Failed to get the hash of endpoint <client-endpoint> "
        "(etcdserver: mvcc: required revision has been compacted)\n" + COMPACTED
    )
    assert r[19].output[0]["HashKV"]["compact_revision"] == 4
    assert (r[20].exit_code, r[20].stderr.splitlines()[-1]) == (1, FUTURE)


def test_member_list_shows_the_single_member(pair: ServerPair) -> None:
    """``member list``: one member, the flags' name and URLs; the header has no revision."""
    r = run_scenario(pair, [["put", "k", "v"], ["member", "list"]])
    assert r[1].output["members"] == [
        {
            "ID": "<member_id>",
            "name": "compat",
            "peerURLs": ["<peer-url>"],
            "clientURLs": ["<client-url>"],
        }
    ]
    assert "revision" not in r[1].output["header"]


# --- request validation ------------------------------------------------------------------------


def test_empty_key_is_not_provided(pair: ServerPair) -> None:
    """``get ""``, ``put "" v`` and ``del ""`` send an empty key: InvalidArgument ``etcdserver:
    key is not provided``."""
    r = run_scenario(pair, [["get", ""], ["put", "", "v"], ["del", ""], ["get", "", "--prefix"]])
    for result in r[:3]:
        assert (result.exit_code, result.output, result.stderr) == (
            1,
            "",
            "Error: etcdserver: key is not provided",
        )
    assert r[3].exit_code == 0


def test_put_larger_than_max_request_bytes_is_too_large(start_pair: StartPair) -> None:
    """With ``--max-request-bytes 1024``, a 2000-byte value is InvalidArgument ``etcdserver:
    request is too large`` and is not stored; a 900-byte one fits."""
    pair = start_pair(ServerOptions(max_request_bytes=1024))
    r = run_scenario(
        pair,
        [
            ["put", "small", "x" * 900],
            ["put", "big", "x" * 2000],
            ["get", "big"],
            ["get", "", "--prefix", "--keys-only"],
        ],
    )
    assert (r[1].exit_code, r[1].stderr) == (1, "Error: etcdserver: request is too large")
    assert keys(r[3]) == ["small"]
