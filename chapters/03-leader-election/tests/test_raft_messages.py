"""The core's messages have etcd's shapes: the same numbers, and conf changes in etcd's bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kv.api.raftpb import raft_pb2
from kv.raft import ConfChange, ConfChangeType, EntryType, MessageType


def test_message_types_have_etcds_numbers_and_names() -> None:
    for kind in MessageType:
        assert raft_pb2.MessageType.Name(kind.value) == str(kind)


def test_entry_and_conf_change_types_have_etcds_numbers() -> None:
    assert raft_pb2.EntryType.Name(EntryType.CONF_CHANGE) == "EntryConfChange"
    assert raft_pb2.ConfChangeType.Name(ConfChangeType.ADD_LEARNER_NODE) == (
        "ConfChangeAddLearnerNode"
    )


conf_changes = st.builds(
    ConfChange,
    type=st.sampled_from(ConfChangeType),
    node_id=st.integers(0, 2**64 - 1),
    context=st.binary(max_size=40),
    id=st.integers(0, 2**64 - 1),
)


@given(conf_changes)
def test_a_conf_change_marshals_to_the_bytes_of_raftpb(change: ConfChange) -> None:
    expected = raft_pb2.ConfChange(
        type=int(change.type), node_id=change.node_id, context=change.context, id=change.id
    )
    assert change.marshal() == expected.SerializeToString(deterministic=True)
    assert ConfChange.unmarshal(expected.SerializeToString()) == change
