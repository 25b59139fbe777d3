"""Normalise what two correct servers may legitimately answer differently, and nothing else.

Two single-member clusters on different ports must differ in a few places; everything else they
print must be equal byte for byte. What this module rewrites, in full:

1. **Identity.** ``cluster_id`` and ``member_id`` (in every header), ``ID`` (of a member in
   ``member list``) and ``memberID`` (of an alarm) are replaced by ``<cluster_id>`` /
   ``<member_id>`` only when they equal the value etcd derives for *that* server from its peer
   URL and cluster token (see `tests.compat.servers.etcd_member_id`); so is the number in the
   text ``memberID:N`` (an alarm as ``alarm list`` prints it and ``endpoint status`` lists it
   under ``errors``). A server reporting any other ID keeps its raw number, so the difference
   shows.
2. **Raft term.** ``raft_term`` (headers) and ``raftTerm`` (endpoint status) become
   ``<raft_term>`` when they are positive integers: the term depends on elections, not on the API.
3. **Addresses.** ``[http://]127.0.0.1:PORT`` of the server's own client or peer port becomes
   ``<client-url>``, ``<client-endpoint>``, ``<peer-url>`` or ``<peer-endpoint>``, in stdout and
   stderr alike. Other ports are left alone.
4. **Endpoint status**: the fields in `STATUS_TYPE_ONLY_FIELDS` are implementation-specific and
   are checked for presence and type instead of value (they become ``<int>``/``<str>``, or a
   visible ``<MISSING ...>``/``<WRONG TYPE ...>`` marker); ``leader`` must be the member's own ID
   (it becomes ``<leader=self>``, otherwise it stays raw).
5. **Endpoint health**: ``took`` (a Go duration) becomes ``<duration>``.
6. **stderr**: the Go client's structured log lines (JSON objects with a ``level``) are dropped;
   what remains (``Error: ...`` and etcdctl's own messages) is compared as text.

A gRPC outcome (`normalise_outcome`) is first put in a comparable form, then rules 1-5 apply: a
response becomes its ``MessageToDict``, an `EtcdError` its gRPC code name and exact message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final, Protocol

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from kv.server.errors import EtcdError
from tests.compat.etcdctl import EtcdctlResult


class Identity(Protocol):
    """What the normaliser needs to know about the server that produced an output."""

    @property
    def member_id(self) -> int: ...
    @property
    def cluster_id(self) -> int: ...
    @property
    def client_port(self) -> int: ...
    @property
    def peer_port(self) -> int: ...


#: Endpoint status fields whose values are implementation-specific (etcd's bbolt file size, raft
#: log positions, its version string). They must be present with this type; the value is not
#: compared. This is the complete list of exceptions: every other status field is compared.
STATUS_TYPE_ONLY_FIELDS: Final[Mapping[str, type]] = {
    "version": str,
    "dbSize": int,
    "dbSizeInUse": int,
    "raftIndex": int,
    "raftAppliedIndex": int,
}

_MEMBER_ID_KEYS: Final = frozenset({"member_id", "ID", "memberID"})
_CLUSTER_ID_KEYS: Final = frozenset({"cluster_id"})
_RAFT_TERM_KEYS: Final = frozenset({"raft_term", "raftTerm"})

_ADDRESS = re.compile(r"(?P<scheme>https?://)?127\.0\.0\.1:(?P<port>\d+)(?!\d)")
_MEMBER_ID_TEXT = re.compile(r"memberID:(?P<id>\d+)(?!\d)")
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


def _same_number(value: Any, expected: int) -> bool:
    """JSON from etcdctl has numbers; protobuf's MessageToDict writes 64-bit ints as strings."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value == expected
    return isinstance(value, str) and value == str(expected)


def _positive_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > 0
    return isinstance(value, str) and value.isdigit() and int(value) > 0


def normalise_text(text: str, who: Identity) -> str:
    """Replace the server's own client/peer addresses and ``memberID:N`` by placeholders."""

    def replace(match: re.Match[str]) -> str:
        port = int(match["port"])
        role = {who.client_port: "client", who.peer_port: "peer"}.get(port)
        if role is None:
            return match[0]
        return f"<{role}-url>" if match["scheme"] else f"<{role}-endpoint>"

    def replace_id(match: re.Match[str]) -> str:
        return "memberID:<member_id>" if int(match["id"]) == who.member_id else match[0]

    return _MEMBER_ID_TEXT.sub(replace_id, _ADDRESS.sub(replace, text))


def _status_exceptions(status: dict[str, Any]) -> dict[str, Any]:
    """Apply the documented endpoint-status exceptions (rule 4) to one ``Status`` object."""
    out = dict(status)
    for name, kind in STATUS_TYPE_ONLY_FIELDS.items():
        if name not in out:
            out[name] = f"<MISSING {kind.__name__}>"
        elif isinstance(out[name], kind) and not isinstance(out[name], bool):
            out[name] = f"<{kind.__name__}>"
        else:
            out[name] = f"<WRONG TYPE {type(out[name]).__name__}: {out[name]!r}>"
    header = out.get("header")
    own_id = header.get("member_id") if isinstance(header, dict) else None
    if "leader" in out and own_id is not None and out["leader"] == own_id:
        out["leader"] = "<leader=self>"
    return out


def normalise_value(value: Any, who: Identity) -> Any:
    """Normalise parsed JSON (from etcdctl, or MessageToDict of a response) per rules 1-5."""
    if isinstance(value, list):
        return [normalise_value(item, who) for item in value]
    if isinstance(value, str):
        return normalise_text(value, who)
    if not isinstance(value, dict):
        return value
    if isinstance(value.get("Status"), dict):  # one entry of `endpoint status`
        value = {**value, "Status": _status_exceptions(value["Status"])}
    took = value.get("took")
    if "health" in value and isinstance(took, str) and _GO_DURATION.match(took):
        value = {**value, "took": "<duration>"}  # one entry of `endpoint health`
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _MEMBER_ID_KEYS and _same_number(item, who.member_id):
            out[key] = "<member_id>"
        elif key in _CLUSTER_ID_KEYS and _same_number(item, who.cluster_id):
            out[key] = "<cluster_id>"
        elif key in _RAFT_TERM_KEYS and _positive_int(item):
            out[key] = "<raft_term>"
        else:
            out[key] = normalise_value(item, who)
    return out


def _is_client_log_line(line: str) -> bool:
    """The Go client's zap log lines, e.g. ``{"level":"warn",...,"msg":"retrying of ..."}``."""
    stripped = line.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return False
    try:
        parsed = json.loads(stripped)
    except json.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and "level" in parsed


def normalise_stderr(stderr: str, who: Identity) -> str:
    """Drop the client's JSON log lines, keep the rest (``Error: ...``), normalise addresses."""
    kept = [line for line in stderr.splitlines() if not _is_client_log_line(line)]
    return normalise_text("\n".join(kept).strip(), who)


def normalise_result(result: EtcdctlResult, who: Identity) -> EtcdctlResult:
    """Normalise an etcdctl result: exit code as is, stdout per rules 1-5, stderr per rule 6."""
    output = result.output
    if isinstance(output, str):  # plain text such as "compacted revision 5"
        output = normalise_text(output.strip(), who)
    else:
        output = normalise_value(output, who)
    return EtcdctlResult(result.exit_code, output, normalise_stderr(result.stderr, who))


def normalise_outcome(outcome: Message | EtcdError, who: Identity) -> dict[str, Any]:
    """A `KVClient` call's response or error, comparable: the response as ``MessageToDict``
    (proto field names, 64-bit ints as strings, bytes as base64) normalised per rules 1-5, or
    the error's gRPC code name and exact message."""
    if isinstance(outcome, EtcdError):
        return {"error": {"code": outcome.code.name, "message": outcome.message}}
    as_dict = MessageToDict(outcome, preserving_proto_field_name=True)
    normalised: dict[str, Any] = normalise_value(as_dict, who)
    return normalised
