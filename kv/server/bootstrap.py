"""How a member of a replicated cluster comes up: new, joining, or restarted (chapter 5).

Three cases, as etcd tells them apart (``etcdserver/server.go``, ``NewServer``):

* **restart** -- the data directory has a WAL. The member's and the cluster's ids come from
  the WAL's metadata, its Raft state from the newest snapshot and the log after it
  (`kv.server.disk.raft_disk`), its applied state from the backend. ``--initial-cluster`` is
  ignored: what the member was born with wins.
* **new cluster** (``--initial-cluster-state new``, empty data directory) -- every member
  derives the same ids from ``--initial-cluster`` and ``--initial-cluster-token``
  (`kv.membership`) and bootstraps Raft with the same first entries: one ``ConfChange`` per
  member, carrying its record, committed at term 1 (`kv.raft.RawNode.bootstrap`).
* **joining** (``--initial-cluster-state existing``, empty data directory) -- the member was
  added with ``etcdctl member add`` and is not in anyone's bootstrap. It asks a peer for the
  member list, finds itself there by its peer URLs, and starts with an empty log: the leader
  sends it the log, or a snapshot if the log it needs was compacted.

A crash while a leader's snapshot was being installed leaves the received backend beside the
old one (``member/snap/<index>.snap.db``) with the snapshot already recorded; it is swapped in
here, as etcd does on start.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from kv.backend import Backend
from kv.lease import Checkpointing
from kv.membership import Cluster, Member
from kv.raft import Config, ConfState, RawNode
from kv.server.applied.applied_state import open_state_machine, swap_backend
from kv.server.applied.members import MemberStore, encode_member
from kv.server.config import ServerConfig
from kv.server.disk.data_dir import DataDir
from kv.server.disk.raft_disk import RaftDisk, SnapshotPolicy, received_backend_path
from kv.server.peers.transport import PeerTransport, fetch_members
from kv.server.replica.batching import BatchPolicy
from kv.server.replica.replica import Replica, Timing

log = logging.getLogger(__name__)


class BootstrapError(RuntimeError):
    """The member cannot start from this data directory and these flags."""


# --8<-- [start:open_replica]
async def open_replica(config: ServerConfig) -> Replica:
    """Open (or create) ``config``'s member and return its replica, not yet started."""
    layout = DataDir(Path(config.data_dir))
    layout.snap.mkdir(mode=0o700, parents=True, exist_ok=True)
    for leftover in layout.snapshot_copies():
        leftover.unlink()
    backend = Backend.open(layout.backend)
    cluster = config.cluster()
    new_cluster = False
    if layout.has_wal():
        disk = RaftDisk.open(layout.wal, layout.snap)
        backend = _finish_snapshot_install(backend, disk)
        _cover_applied_entries(disk, backend)
    elif config.initial_cluster_state == "new":
        me = cluster.member_named(config.name)
        await _check_not_bootstrapped(config, cluster, me)
        disk = RaftDisk.create(layout.wal, layout.snap, me.id, cluster.id)
        new_cluster = True
    else:
        me, cluster_id = await _join(config, cluster, backend)
        disk = RaftDisk.create(layout.wal, layout.snap, me.id, cluster_id)
    timing = Timing(config.heartbeat_interval, config.election_timeout, _checkpointing(config))
    machine = open_state_machine(backend, lessor=timing.new_lessor())
    # --8<-- [end:open_replica]
    raft_config = Config(
        id=disk.member_id,
        election_tick=timing.election_ticks,
        heartbeat_tick=1,
        applied=disk.snapshot_index,
        pre_vote=config.pre_vote,
        check_quorum=True,  # etcd always runs with CheckQuorum
    )
    # The driver owns the randomness: a seed from the OS, handed to the pure core.
    raw = RawNode(raft_config, disk.storage, random.Random())
    if new_cluster:
        raw.bootstrap(
            [member.id for member in cluster.members],
            {member.id: encode_member(member) for member in cluster.members},
        )
    return Replica(
        raw=raw,
        disk=disk,
        transport=PeerTransport(disk.member_id, disk.cluster_id, disk.encodings),
        backend=backend,
        machine=machine,
        timing=timing,
        policy=SnapshotPolicy(config.snapshot_count, config.max_wals, config.max_snapshots),
        catch_up_entries=config.experimental_snapshot_catchup_entries,
        batch_policy=BatchPolicy.from_flags(
            config.backend_batch_interval, config.backend_batch_limit
        ),
    )


def _checkpointing(config: ServerConfig) -> Checkpointing | None:
    """How this member checkpoints leases (chapter 7), if it does."""
    if not config.experimental_enable_lease_checkpoint:
        return None
    if not config.experimental_enable_lease_checkpoint_persist:
        # etcd 3.4.23 logs this with --logger=zap; with its default logger it panics instead.
        log.warning(
            "Detected that checkpointing is enabled without persistence. "
            "Consider enabling experimental-enable-lease-checkpoint-persist"
        )
    return Checkpointing(
        config.experimental_lease_checkpoint_interval,
        persist=config.experimental_enable_lease_checkpoint_persist,
    )


def _finish_snapshot_install(backend: Backend, disk: RaftDisk) -> Backend:
    """Swap in a leader's backend that a crash left beside ours (etcd: openSnapshotBackend)."""
    index = disk.snapshot_index
    received = received_backend_path(disk.snapshotter.directory, index)
    if backend.consistent_index < index and received.exists():
        log.info("finishing the install of the snapshot at index %d", index)
        return swap_backend(backend, received)
    received.unlink(missing_ok=True)
    return backend


def _cover_applied_entries(disk: RaftDisk, backend: Backend) -> None:
    """A log shorter than what the backend applied lost records that had been fsynced (the
    disk dropped them: Raft never applies an entry before it is durable). A member alone in
    its cluster goes on from the backend, as chapter 2's recovery did; a member of a larger
    cluster refuses to start, as etcd does, since it may have acknowledged entries it lost.

    Raises:
        BootstrapError: the log lost applied entries in a multi-member cluster.
    """
    applied, last = backend.consistent_index, disk.storage.last_index()
    if applied <= last:
        return
    members = MemberStore(backend).list()
    voters = tuple(member.id for member in members if not member.is_learner)
    if voters != (disk.member_id,):
        raise BootstrapError(
            f"the write-ahead log ends at index {last} but the backend applied up to "
            f"{applied}: the log lost entries this member acknowledged; remove the member "
            "and add it back with an empty data dir"
        )
    term = max(disk.storage.hard_state.term, disk.storage.term(last) if last else 0, 1)
    log.warning(
        "the write-ahead log ends at index %d but the backend holds entries up to %d; "
        "recording a snapshot at %d so that the log goes on from there",
        last,
        applied,
        applied,
    )
    disk.cover(applied, term, ConfState(voters=voters))


# --8<-- [start:join]
async def _check_not_bootstrapped(config: ServerConfig, cluster: Cluster, me: Member) -> None:
    """Refuse to bootstrap a member the running cluster knows as started (it published its
    client URLs): its data
    directory was lost, and with it its votes (it could vote twice in a term and help elect
    two leaders). etcd: ``isMemberBootstrapped``. Peers that cannot be reached mean a new
    cluster whose other members are not up yet, which is fine.

    Raises:
        BootstrapError: etcd's message.
    """
    others = tuple(url for m in cluster.members if m.id != me.id for url in m.peer_urls)
    try:
        response = await fetch_members(others, timeout=1.0)
    except ConnectionError:
        return
    if response.header.cluster_id != cluster.id:
        return  # another cluster on those URLs: the peer transport keeps us apart
    if any(me.id == member.ID and member.clientURLs for member in response.members):
        raise BootstrapError(
            f"member {me.id:x} has already been bootstrapped (its data directory "
            f"{config.data_dir} is empty: remove the member and add it again, then start it "
            "with --initial-cluster-state existing)"
        )


async def _join(config: ServerConfig, cluster: Cluster, backend: Backend) -> tuple[Member, int]:
    """Learn the cluster from a peer and find this member in it by its peer URLs."""
    mine = set(config.initial_advertise_peer_urls)
    others = tuple(url for member in cluster.members for url in member.peer_urls if url not in mine)
    response = await fetch_members(others)
    store = MemberStore(backend)
    me: Member | None = None
    for wire in response.members:
        member = Member(
            wire.ID, wire.name, tuple(wire.peerURLs), tuple(wire.clientURLs), wire.isLearner
        )
        store.add(member)
        if set(member.peer_urls) == mine:
            me = member
    if me is None:
        raise BootstrapError(
            f"couldn't find local name {config.name!r} in the initial cluster configuration"
            " (was it added with etcdctl member add?)"
        )
    backend.commit(0)
    log.info("joining cluster %x as member %x", response.header.cluster_id, me.id)
    return me, response.header.cluster_id


# --8<-- [end:join]
