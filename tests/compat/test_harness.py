"""The harness itself: the normaliser rewrites only the documented fields, and a subject that
really differs is caught. The inputs are outputs captured from etcd 3.4.23."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.api.mvccpb import kv_pb2
from kv.client import KVClient
from kv.server.errors import EtcdError
from tests.compat.etcdctl import EtcdctlResult, etcdctl
from tests.compat.normalise import normalise_outcome, normalise_result, normalise_value
from tests.compat.scenario import GrpcComparison, ScenarioMismatch, ServerPair, run_scenario
from tests.compat.servers import REPO_ROOT, etcd_cluster_id, etcd_member_id, kv_command


@dataclass(frozen=True)
class FakeIdentity:
    """The identity of the etcd the captured outputs below came from."""

    client_port: int = 23790
    peer_port: int = 23800
    member_id: int = etcd_member_id(["http://127.0.0.1:23800"], "tok")
    cluster_id: int = etcd_cluster_id([etcd_member_id(["http://127.0.0.1:23800"], "tok")])


WHO = FakeIdentity()
HEADER = {
    "cluster_id": 4413477065597753003,
    "member_id": 2681083982177880140,
    "revision": 3,
    "raft_term": 2,
}
STATUS: dict[str, Any] = {
    "header": HEADER,
    "version": "3.4.23",
    "dbSize": 20480,
    "leader": 2681083982177880140,
    "raftIndex": 6,
    "raftTerm": 2,
    "raftAppliedIndex": 6,
    "dbSizeInUse": 16384,
}


def test_member_and_cluster_ids_are_derived_as_etcd_derives_them() -> None:
    """etcd's IDs: SHA-1 of peer URLs + token, and of the member IDs (seen on etcd 3.4.23)."""
    assert WHO.member_id == 2681083982177880140
    assert WHO.cluster_id == 4413477065597753003


def test_header_ids_and_term_are_replaced_but_revision_is_kept() -> None:
    assert normalise_value({"header": HEADER}, WHO) == {
        "header": {
            "cluster_id": "<cluster_id>",
            "member_id": "<member_id>",
            "revision": 3,
            "raft_term": "<raft_term>",
        }
    }


def test_an_id_etcd_would_not_choose_stays_visible() -> None:
    header = {**HEADER, "member_id": 42, "cluster_id": 7}
    assert normalise_value(header, WHO)["member_id"] == 42
    assert normalise_value(header, WHO)["cluster_id"] == 7


def test_status_fields_outside_the_exception_list_are_compared() -> None:
    entry = {"Endpoint": "127.0.0.1:23790", "Status": STATUS}
    assert normalise_value(entry, WHO) == {
        "Endpoint": "<client-endpoint>",
        "Status": {
            "header": normalise_value({"header": HEADER}, WHO)["header"],
            "version": "<str>",
            "dbSize": "<int>",
            "leader": "<leader=self>",
            "raftIndex": "<int>",
            "raftTerm": "<raft_term>",
            "raftAppliedIndex": "<int>",
            "dbSizeInUse": "<int>",
        },
    }


def test_status_missing_or_mistyped_fields_and_foreign_leader_show() -> None:
    status = {k: v for k, v in STATUS.items() if k != "dbSize"}
    status |= {"version": 3, "leader": 99, "isLearner": True}
    out = normalise_value({"Status": status}, WHO)["Status"]
    assert out["dbSize"] == "<MISSING int>"
    assert out["version"] == "<WRONG TYPE int: 3>"
    assert out["leader"] == 99
    assert out["isLearner"] is True


def test_addresses_of_other_ports_are_not_replaced() -> None:
    text = "http://127.0.0.1:23790 127.0.0.1:23800 127.0.0.1:237900 127.0.0.1:2379"
    assert (
        normalise_value(text, WHO) == "<client-url> <peer-endpoint> 127.0.0.1:237900 127.0.0.1:2379"
    )


def test_client_log_lines_are_dropped_from_stderr_and_the_error_line_kept() -> None:
    stderr = (
        '{"level":"warn","ts":"2026-11-24T08:02:08.198Z","caller":"clientv3/retry_interceptor.go:62",'
        '"msg":"retrying of unary invoker failed","target":"passthrough:///127.0.0.1:23790",'
        '"attempt":0,"error":"rpc error: code = OutOfRange desc = etcdserver: mvcc: required '
        'revision is a future revision"}\n'
        "Failed to get the hash of endpoint 127.0.0.1:23790 (etcdserver: mvcc: required revision "
        "is a future revision)\n"
        "Error: etcdserver: mvcc: required revision is a future revision\n"
    )
    assert normalise_result(EtcdctlResult(1, [], stderr), WHO) == EtcdctlResult(
        1,
        [],
        "Failed to get the hash of endpoint <client-endpoint> (etcdserver: mvcc: required "
        "revision is a future revision)\n"
        "Error: etcdserver: mvcc: required revision is a future revision",
    )


def test_health_took_is_replaced_only_when_it_is_a_duration() -> None:
    entry = {"endpoint": "127.0.0.1:23790", "health": True, "took": "1.063216ms"}
    assert normalise_value([entry], WHO) == [
        {"endpoint": "<client-endpoint>", "health": True, "took": "<duration>"}
    ]
    assert normalise_value({**entry, "took": "soon"}, WHO)["took"] == "soon"


def test_a_grpc_response_is_compared_as_message_to_dict_with_ids_replaced() -> None:
    response = rpc_pb2.RangeResponse(
        header=rpc_pb2.ResponseHeader(**HEADER),
        kvs=[kv_pb2.KeyValue(key=b"a", value=b"1", create_revision=2, mod_revision=2, version=1)],
        count=1,
    )
    assert normalise_outcome(response, WHO) == {
        "header": {
            "cluster_id": "<cluster_id>",
            "member_id": "<member_id>",
            "revision": "3",
            "raft_term": "<raft_term>",
        },
        "kvs": [
            {
                "key": "YQ==",
                "value": "MQ==",
                "create_revision": "2",
                "mod_revision": "2",
                "version": "1",
            }
        ],
        "count": "1",
    }


def test_a_grpc_error_is_compared_by_code_name_and_exact_message() -> None:
    error = EtcdError(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided")
    assert normalise_outcome(error, WHO) == {
        "error": {"code": "INVALID_ARGUMENT", "message": "etcdserver: key is not provided"}
    }


def test_the_kv_command_passes_on_kvs_exit_code() -> None:
    """A kv that refuses its flags must not look like one that exited cleanly."""
    completed = subprocess.run(
        [*kv_command(), "serve", "--no-such-flag"], cwd=REPO_ROOT, capture_output=True, check=False
    )
    assert completed.returncode == 2, completed.stderr.decode(errors="replace")


@pytest.mark.etcd
def test_a_subject_that_really_differs_is_caught(pair: ServerPair) -> None:
    """One extra write on the subject only: the very next step must fail the comparison."""
    etcdctl(pair.subject.endpoint, ["put", "only-on-the-subject", "x"])
    with pytest.raises(ScenarioMismatch, match=r"step 1 of 1 \(etcdctl put k v\)"):
        run_scenario(pair, [["put", "k", "v"]])


@pytest.mark.etcd
async def test_a_subject_that_really_differs_over_grpc_is_caught(pair: ServerPair) -> None:
    """The same through `KVClient`: an extra write on the subject fails the next step."""
    async with KVClient(pair.subject.endpoint) as subject:
        await subject.put("only-on-the-subject", "x")
    async with GrpcComparison(pair) as cmp:
        with pytest.raises(ScenarioMismatch, match=r"step 1 \(put k\)"):
            await cmp.step("put k", lambda c: c.put("k", "v"))


def test_own_member_id_of_an_alarm_is_replaced_in_json_and_in_text() -> None:
    """``alarm list -w json`` and ``endpoint status`` of a member in NOSPACE (etcd 3.4.23)."""
    own = WHO.member_id
    alarms = {"alarms": [{"memberID": own, "alarm": 1}, {"memberID": 5, "alarm": 1}]}
    assert normalise_value(alarms, WHO) == {
        "alarms": [{"memberID": "<member_id>", "alarm": 1}, {"memberID": 5, "alarm": 1}]
    }
    errors = [f"memberID:{own} alarm:NOSPACE ", "memberID:5 alarm:NOSPACE "]
    assert normalise_value({"errors": errors}, WHO) == {
        "errors": ["memberID:<member_id> alarm:NOSPACE ", "memberID:5 alarm:NOSPACE "]
    }
    assert normalise_result(EtcdctlResult(0, f"memberID:{own}1 alarm:NOSPACE", ""), WHO).output == (
        f"memberID:{own}1 alarm:NOSPACE"  # a longer number is another id
    )
