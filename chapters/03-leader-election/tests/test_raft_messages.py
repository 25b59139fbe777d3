"""The core's messages have etcd's shapes: the same numbers. (Conf changes in etcd's bytes are
chapter 5's: ``test_membership_core.py``.)"""

from __future__ import annotations

from kv.api.raftpb import raft_pb2
from kv.raft import ConfChangeType, EntryType, MessageType


def test_message_types_have_etcds_numbers_and_names() -> None:
    for kind in MessageType:
        assert raft_pb2.MessageType.Name(kind.value) == str(kind)


def test_entry_and_conf_change_types_have_etcds_numbers() -> None:
    assert raft_pb2.EntryType.Name(EntryType.CONF_CHANGE) == "EntryConfChange"
    assert raft_pb2.ConfChangeType.Name(ConfChangeType.ADD_LEARNER_NODE) == (
        "ConfChangeAddLearnerNode"
    )
