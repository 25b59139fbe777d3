"""Lease checkpoints around the lessor: etcd 3.4.23's two flags, the LeaseCheckpoint entry
applied on a member, and the remaining TTL in the backend's ``lease`` table -- persisted only
with ``--experimental-enable-lease-checkpoint-persist`` (`kv.lease.checkpoint`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.backend import Backend
from kv.cli import FLAGS, serve_flags
from kv.lease import Checkpointing, Lessor
from kv.server.applied.applied_state import commit_applied, open_state_machine
from kv.server.config import ServerConfig
from kv.server.flag_values import ConfigError

LEASE = 7


def flags(**given: str) -> ServerConfig:
    values: dict[str, str | None] = {flag.field: None for flag in FLAGS}
    values.update(given)
    return serve_flags(values, {}).config


def test_checkpointing_is_off_by_default_with_etcds_five_minutes() -> None:
    config = flags()
    assert not config.experimental_enable_lease_checkpoint
    assert not config.experimental_enable_lease_checkpoint_persist
    assert config.experimental_lease_checkpoint_interval == 300.0


def test_the_flags_are_go_bools_and_the_interval_a_duration() -> None:
    config = flags(
        experimental_enable_lease_checkpoint="true",  # what a bare --flag becomes
        experimental_enable_lease_checkpoint_persist="1",
        experimental_lease_checkpoint_interval="2s",
    )
    assert config.experimental_enable_lease_checkpoint
    assert config.experimental_enable_lease_checkpoint_persist
    assert config.experimental_lease_checkpoint_interval == 2.0


def test_the_persist_flag_alone_is_refused_with_etcds_message() -> None:
    with pytest.raises(ConfigError) as refused:
        ServerConfig(experimental_enable_lease_checkpoint_persist=True)
    assert str(refused.value) == (
        "setting experimental-enable-lease-checkpoint-persist requires "
        "experimental-enable-lease-checkpoint"
    )


def apply_checkpoint(path: Path, persist: bool, remaining: int) -> None:
    """Grant lease 7 of 1000 s and apply a checkpoint of it on a member over ``path``."""
    lessor = Lessor(2, checkpointing=Checkpointing(persist=persist))
    with Backend.open(path) as backend:
        machine = open_state_machine(backend, lessor=lessor)
        machine.apply(
            1, InternalRaftRequest(lease_grant=rpc_pb2.LeaseGrantRequest(ID=LEASE, TTL=1000))
        )
        checkpoint = rpc_pb2.LeaseCheckpoint(ID=LEASE, remaining_TTL=remaining)
        request = rpc_pb2.LeaseCheckpointRequest(checkpoints=[checkpoint])
        machine.apply(2, InternalRaftRequest(lease_checkpoint=request))
        lease = machine.leases.lessor.lookup(LEASE)
        assert lease is not None and lease.checkpoint_ttl == remaining  # on every member
        commit_applied(backend, machine)


def reopened_checkpoint(path: Path) -> int:
    """The lease's remaining TTL as a restarted member reads it back."""
    with Backend.open(path) as backend:
        lease = open_state_machine(backend, lessor=Lessor(2)).leases.lessor.lookup(LEASE)
        assert lease is not None
        return lease.checkpoint_ttl


def test_a_persisted_checkpoint_is_read_back_after_a_restart(tmp_path: Path) -> None:
    apply_checkpoint(tmp_path / "db", persist=True, remaining=700)
    assert reopened_checkpoint(tmp_path / "db") == 700


def test_an_unpersisted_checkpoint_is_lost_by_a_restart(tmp_path: Path) -> None:
    # etcd 3.4.23 without the persist flag (issue #17132): the entry is below the consistent
    # index, so it is not applied again either.
    apply_checkpoint(tmp_path / "db", persist=False, remaining=700)
    assert reopened_checkpoint(tmp_path / "db") == 0


def test_a_persisted_checkpoint_of_zero_clears_the_record(tmp_path: Path) -> None:
    apply_checkpoint(tmp_path / "db", persist=True, remaining=700)
    with Backend.open(tmp_path / "db") as backend:
        lessor = Lessor(2, checkpointing=Checkpointing(persist=True))
        machine = open_state_machine(backend, lessor=lessor)
        clear = rpc_pb2.LeaseCheckpointRequest(checkpoints=[rpc_pb2.LeaseCheckpoint(ID=LEASE)])
        machine.apply(3, InternalRaftRequest(lease_checkpoint=clear))
        commit_applied(backend, machine)
    assert reopened_checkpoint(tmp_path / "db") == 0


def test_a_backend_written_before_checkpoints_opens_with_none(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with sqlite3.connect(path) as old:  # the lease table as it was: no remaining_ttl column
        old.execute("CREATE TABLE lease (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL)")
        old.execute("INSERT INTO lease VALUES (?, 1000)", (LEASE,))
    with Backend.open(path) as backend:
        assert backend.leases() == [(LEASE, 1000)] and backend.lease_checkpoints() == {}
        backend.checkpoint_lease(LEASE, 700)
        backend.commit(1)
        assert backend.lease_checkpoints() == {LEASE: 700}
