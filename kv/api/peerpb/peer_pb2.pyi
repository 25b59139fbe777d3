from kv.api.etcdserverpb import rpc_pb2 as _rpc_pb2
from kv.api.raftpb import raft_pb2 as _raft_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageBatch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_raft_pb2.Message]
    def __init__(self, messages: _Optional[_Iterable[_Union[_raft_pb2.Message, _Mapping]]] = ...) -> None: ...

class SnapshotAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Faults(_message.Message):
    __slots__ = ("blocked",)
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    blocked: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, blocked: _Optional[_Iterable[int]] = ...) -> None: ...

class GetFaultsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DiskFaults(_message.Message):
    __slots__ = ("fsync_delay_ms",)
    FSYNC_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    fsync_delay_ms: int
    def __init__(self, fsync_delay_ms: _Optional[int] = ...) -> None: ...

class GetMembersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
