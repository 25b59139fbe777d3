"""The cluster's membership as the replicated state machine keeps it (chapter 5).

Raft only knows member *ids* (its `ConfState`). Everything else etcd shows in ``etcdctl member
list`` -- a name, peer URLs, client URLs, learner or voter -- is application state, and it
travels through the log like any write, so every member holds the same list at the same index:

* a membership change is a ``ConfChange`` entry whose ``context`` is the member record in
  etcd's JSON form (``{"id":..., "peerURLs":[...], "isLearner":true}``); applying it adds,
  promotes, updates or removes the member here *and* tells Raft (`RawNode.apply_conf_change`);
* a member that starts up publishes its name and client URLs in a
  ``ClusterMemberAttrSetRequest`` entry (etcd 3.5's way; `kv.server.replica.replica` proposes it).

The records live in the backend's ``member`` table, committed with the consistent index like
the key space, so they survive restarts and travel inside snapshots. Removed ids are kept too:
etcd never lets a removed member come back (its id would have stale state).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Protocol

from kv.api.etcdserverpb import rpc_pb2
from kv.api.membershippb.membership_pb2 import ClusterMemberAttrSetRequest
from kv.membership import Member
from kv.raft import ConfChange, ConfChangeType


class MemberTable(Protocol):
    """Where the records are kept (`kv.backend.Backend` in the server)."""

    def members(self) -> list[tuple[int, str]]: ...
    def removed_members(self) -> set[int]: ...
    def put_member(self, member_id: int, record: str) -> None: ...
    def remove_member(self, member_id: int) -> None: ...
    def cluster_version(self) -> str: ...
    def set_cluster_version(self, version: str) -> None: ...


def encode_member(member: Member) -> bytes:
    """A member in etcd's JSON form (``membership.Member``; empty fields are left out)."""
    record: dict[str, object] = {"id": member.id, "peerURLs": list(member.peer_urls)}
    if member.name:
        record["name"] = member.name
    if member.client_urls:
        record["clientURLs"] = list(member.client_urls)
    if member.is_learner:
        record["isLearner"] = True
    return json.dumps(record, separators=(",", ":")).encode()


def decode_member(data: bytes | str) -> Member:
    record = json.loads(data)
    return Member(
        id=int(record["id"]),
        name=record.get("name", ""),
        peer_urls=tuple(record.get("peerURLs", ())),
        client_urls=tuple(record.get("clientURLs", ())),
        is_learner=bool(record.get("isLearner", False)),
    )


class MemberStore:
    """The members, read from and written to a `MemberTable` as entries are applied."""

    def __init__(self, table: MemberTable) -> None:
        self.table = table
        # The peer transport asks about every message it receives, and a leader about the
        # version after every batch it applies: keep both in memory (they change only here).
        self._removed = table.removed_members()
        self._cluster_version = table.cluster_version()

    def list(self) -> list[Member]:
        """Every member, in id order (as numbers: etcd's order)."""
        return sorted(
            (decode_member(record) for _, record in self.table.members()), key=lambda m: m.id
        )

    def get(self, member_id: int) -> Member | None:
        for member in self.list():
            if member.id == member_id:
                return member
        return None

    def is_removed(self, member_id: int) -> bool:
        return member_id in self._removed

    def add(self, member: Member) -> None:
        """Record ``member`` (bootstrap, or a joining member learning the cluster)."""
        self.table.put_member(member.id, encode_member(member).decode())

    # --8<-- [start:apply_conf_change]
    def apply_conf_change(self, change: ConfChange) -> None:
        """The application's half of a committed membership change (Raft's half is
        `RawNode.apply_conf_change`). Applying one twice changes nothing."""
        known = self.get(change.node_id)
        if change.type is ConfChangeType.REMOVE_NODE:
            if known is not None:
                self.table.remove_member(change.node_id)
                self._removed.add(change.node_id)
            return
        if self.is_removed(change.node_id):
            return  # etcd ignores changes to a removed id
        if change.type is ConfChangeType.ADD_NODE and known is not None and change.context:
            # Adding a voter that is a learner promotes it; name and client URLs stay.
            proposed = decode_member(change.context)
            self.add(replace(known, peer_urls=proposed.peer_urls, is_learner=False))
            return
        if change.context:  # ADD_NODE, ADD_LEARNER_NODE, UPDATE_NODE carry the record
            proposed = decode_member(change.context)
            if known is not None:  # keep what the member published about itself
                proposed = replace(proposed, name=known.name, client_urls=known.client_urls)
            self.add(proposed)

    # --8<-- [end:apply_conf_change]

    def list_response(self, header: rpc_pb2.ResponseHeader) -> rpc_pb2.MemberListResponse:
        """The members as etcd's MemberList answers them, in id order."""
        response = rpc_pb2.MemberListResponse(header=header)
        for member in self.list():
            response.members.add(
                ID=member.id,
                name=member.name,
                peerURLs=member.peer_urls,
                clientURLs=member.client_urls,
                isLearner=member.is_learner,
            )
        return response

    @property
    def cluster_version(self) -> str:
        """The version the cluster runs ("" until the leader has decided it)."""
        return self._cluster_version

    def set_cluster_version(self, version: str) -> None:
        self.table.set_cluster_version(version)
        self._cluster_version = version

    def set_attributes(self, request: ClusterMemberAttrSetRequest) -> None:
        """Apply a member's published name and client URLs (ignored for an unknown id)."""
        known = self.get(request.member_ID)
        if known is None:
            return
        attributes = request.member_attributes
        self.add(replace(known, name=attributes.name, client_urls=tuple(attributes.client_urls)))
