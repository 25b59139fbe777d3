"""Alarms: how a member says "stop writing" until an operator steps in (chapter 2).

etcd raises an alarm when more writes would make a problem worse: ``NOSPACE`` when the backend
has outgrown its quota (``--quota-backend-bytes``, see `kv.server.requests.quota`), ``CORRUPT`` when
the members' data disagree. An alarm is raised and cleared through the log, as an
``AlarmRequest`` entry applied like any write: it is committed to the backend's ``alarm``
table together with the consistent index, survives a restart, and (from chapter 3 on) reaches
every member. While one is raised, the apply layer refuses what would make things worse
(etcd: ``etcdserver/apply.go``, ``applierV3Capped`` and ``applierV3Corrupt``):

* NOSPACE refuses puts, a Txn that puts (chapter 6) and LeaseGrant (chapter 7) with
  ResourceExhausted ``etcdserver: mvcc: database space exceeded``. Reads, deletes,
  compaction, defragment and snapshots still work: they are how space is won back.
* CORRUPT refuses every write with DataLoss ``etcdserver: corrupt cluster``; reads work.

These refusals happen when an entry is *applied*: a put that fits the quota while NOSPACE is
raised is logged (etcd's raft index moves too), refused, and refused again on replay. (A put
that does not fit the quota is refused before it is logged, by `kv.server.requests.quota`, and
raises NOSPACE if it is not raised yet.) To recover from NOSPACE an operator
frees space (``etcdctl compaction``, ``etcdctl defrag``) and clears the alarm with ``etcdctl
alarm disarm``, which lists the alarms and sends a DEACTIVATE for each one.
"""

from __future__ import annotations

import logging
from typing import Protocol, TypeAlias

from grpc import StatusCode

from kv.api.etcdserverpb import rpc_pb2
from kv.server import errors
from kv.server.errors import EtcdError

AlarmType = rpc_pb2.AlarmType
AlarmRequest = rpc_pb2.AlarmRequest
Alarm: TypeAlias = int  # an rpc_pb2.AlarmType value: NONE, NOSPACE, CORRUPT

log = logging.getLogger(__name__)

# --8<-- [start:refused]
#: What each raised alarm refuses, by the kind of log entry (the ``InternalRaftRequest``
#: field that is set). CORRUPT is checked first: it refuses more.
REFUSED: dict[Alarm, tuple[frozenset[str], EtcdError]] = {
    AlarmType.CORRUPT: (
        frozenset({"put", "delete_range", "txn", "compaction", "lease_grant", "lease_revoke"}),
        errors.CORRUPT,
    ),
    # A Txn only if it adds data (chapter 6): a put in one of its branches gives it a cost.
    AlarmType.NOSPACE: (frozenset({"put", "txn", "lease_grant"}), errors.NO_SPACE),
}
# --8<-- [end:refused]


class AlarmTable(Protocol):
    """Where raised alarms are kept: `kv.backend.Backend` (its ``alarm`` table)."""

    def alarms(self) -> list[tuple[int, str]]: ...
    def add_alarm(self, member_id: int, alarm: str) -> None: ...
    def remove_alarm(self, member_id: int, alarm: str) -> None: ...


def alarm_text(member: rpc_pb2.AlarmMember) -> str:
    """An alarm as etcd words it in ``Status.errors`` and ``etcdctl alarm list``.

    That is gogo-protobuf's compact text form: ``memberID:13668033151171901709 alarm:NOSPACE ``
    (decimal id, a space after each field, fields holding zero left out).
    """
    text = f"memberID:{member.memberID} " if member.memberID else ""
    if member.alarm:
        text += f"alarm:{AlarmType.Name(member.alarm)} "
    return text


class AlarmStore:
    """The raised alarms: in memory for the apply layer, in the backend for restarts."""

    def __init__(self, table: AlarmTable | None = None) -> None:
        """Load the alarms ``table`` holds; with no table, alarms live in memory only."""
        self._table = table
        self._raised: set[tuple[int, Alarm]] = set()
        if table is not None:
            self._raised = {(member, AlarmType.Value(name)) for member, name in table.alarms()}

    def get(self, alarm: Alarm = AlarmType.NONE) -> list[rpc_pb2.AlarmMember]:
        """The raised alarms of type ``alarm`` (NONE: all), by member id, then type.

        (etcd keeps them in Go maps, so its order is random; one member's NOSPACE is one entry.)
        """
        return [
            rpc_pb2.AlarmMember(memberID=member, alarm=AlarmType.Name(kind))
            for member, kind in sorted(self._raised)
            if alarm in (AlarmType.NONE, kind)
        ]

    def is_raised(self, alarm: Alarm) -> bool:
        return any(kind == alarm for _, kind in self._raised)

    def refusal(self, kind: str | None, *, adds_data: bool = True) -> EtcdError | None:
        """The error an entry of this kind gets while the alarms now raised stay raised.

        NOSPACE refuses only entries that add data: not a txn without a put of its own (etcd:
        ``applierV3Capped.Txn`` refuses a txn whose quota cost is above zero).
        """
        if not self._raised:  # the usual case, asked for every entry applied: at once
            return None
        for alarm in (AlarmType.CORRUPT, AlarmType.NOSPACE):
            refused, error = REFUSED[alarm]
            if alarm == AlarmType.NOSPACE and not adds_data:
                continue
            if kind in refused and self.is_raised(alarm):
                return error
        return None

    # --8<-- [start:apply]
    def apply(self, request: AlarmRequest) -> rpc_pb2.AlarmResponse:
        """Apply a logged ``AlarmRequest`` (etcd: ``applierV3backend.Alarm``).

        GET lists; ACTIVATE answers with the alarm (also if it was raised before); DEACTIVATE
        answers with the alarm it cleared, or with nothing if it was not raised. etcd 3.4
        sends no header with any of them.
        """
        response = rpc_pb2.AlarmResponse()
        key = (request.memberID, request.alarm)
        name = AlarmType.Name(request.alarm)
        if request.action == AlarmRequest.GET:
            response.alarms.extend(self.get(request.alarm))
        elif request.action == AlarmRequest.ACTIVATE:
            first = not self.is_raised(request.alarm)
            if key not in self._raised:
                if self._table is not None:  # the table first: it may fail (a full disk)
                    self._table.add_alarm(request.memberID, name)
                self._raised.add(key)
            response.alarms.add(memberID=request.memberID, alarm=request.alarm)
            if first:
                log.warning("alarm %s raised by peer %x", name, request.memberID)
        elif request.action == AlarmRequest.DEACTIVATE and key in self._raised:
            if self._table is not None:
                self._table.remove_alarm(request.memberID, name)
            self._raised.remove(key)
            response.alarms.add(memberID=request.memberID, alarm=request.alarm)
            if not self.is_raised(request.alarm):
                log.info("alarm disarmed %s", request_text(request))
        return response

    # --8<-- [end:apply]


def request_text(request: AlarmRequest) -> str:
    """An ``AlarmRequest`` in etcd's log form: ``action:DEACTIVATE memberID:5 alarm:NOSPACE ``."""
    text = f"action:{AlarmRequest.AlarmAction.Name(request.action)} " if request.action else ""
    member = rpc_pb2.AlarmMember(memberID=request.memberID, alarm=request.alarm)
    return text + alarm_text(member)


def check_request(request: AlarmRequest) -> None:
    """Refuse an action or alarm type etcd does not know before it reaches the log.

    etcd 3.4 logs such a request and then crashes applying it (an unknown action answers
    nothing, and the server dereferences the missing answer); kv refuses it instead.
    """
    if request.action not in AlarmRequest.AlarmAction.values():
        message = f"kv: unknown alarm action {request.action}"
        raise EtcdError(StatusCode.INVALID_ARGUMENT, message)
    if request.alarm not in AlarmType.values():
        raise EtcdError(StatusCode.INVALID_ARGUMENT, f"kv: unknown alarm type {request.alarm}")
