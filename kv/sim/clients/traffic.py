"""`ClientTraffic`: clients' requests on their way to a member and back (``cluster.traffic``).

A request (`Client.put`, ``get``, ``delete``, ...) is a `kv.sim.clients.client.ClientOp` that
travels over the client's link (a delay drawn from ``SimConfig.client_delay_ms``; the link
never fails) to the client's endpoint:

* a member that is down refuses it ("connection refused"), and one whose core refuses the
  proposal at once says why; the client hears so after another delay, moves to its next
  endpoint and tries again after ``SimConfig.retry_backoff_ms``;
* a member that takes it proposes the write (or starts a ReadIndex read) and answers once it
  applied it (`kv.sim.node.SimNode.finish_ready`); the answer travels back over the link;
* whatever happens, the request times out after ``SimConfig.request_timeout_ms``: a write
  some member accepted may still be applied, so its outcome is unknown (Jepsen's rule) and
  the client takes a new process id; anything else certainly had no effect.

An answer that arrives for an attempt the client gave up on is ignored; an answer nobody
waits for is a leader's lease expiry's (`kv.sim.leases.expiry`). The cluster
(`kv.sim.timeline.cluster`) owns the clock; this module schedules on it. Moved out of
`kv.sim.timeline.cluster` (chapter 3; the clients themselves are chapter 4's).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from kv.linearizability import Get
from kv.linearizability.leases import LeaseInput, LeaseModel, LeaseOutput
from kv.sim.clients.client import Client, ClientOp, OpState, to_output, to_request
from kv.sim.node.pending import Answer
from kv.sim.timeline.events import ClientEvent
from kv.sim.timeline.tasks import TaskKind

if TYPE_CHECKING:
    from kv.sim.timeline.cluster import Cluster

_DESCRIBE = LeaseModel()


class ClientTraffic:
    """Every client request between its call and its answer (module docstring)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._waiting: dict[int, tuple[Client, ClientOp, int]] = {}

    def start_request(self, client: Client, input: LeaseInput) -> ClientOp:
        """Begin ``client``'s request (its `Client.put`/`get`/`delete` call this)."""
        cluster = self.cluster
        if client.current is not None:
            raise RuntimeError(f"c{client.id} is still waiting for {client.current}")
        timeout = cluster.config.request_timeout_ms
        op = ClientOp(client.id, client.process, input, cluster.now, cluster.now + timeout)
        cluster.ops.append(op)
        client.current = op
        cluster.schedule(timeout, partial(self._timed_out, client, op), TaskKind.CLIENT)
        self._attempt(client, op)
        return op

    def _attempt(self, client: Client, op: ClientOp) -> None:
        if op.done:
            return
        node_id = client.endpoints[client.endpoint]
        op.attempts += 1
        op.node = node_id
        self.cluster.emit(ClientEvent(client.id, node_id, "sent", _describe(op)))
        arrive = partial(self._request_arrives, client, op, op.attempts, node_id)
        self.cluster.schedule(self.cluster.client_delay(), arrive, TaskKind.CLIENT, node_id)

    def _request_arrives(self, client: Client, op: ClientOp, attempt: int, node_id: int) -> None:
        if op.done:
            return
        cluster = self.cluster
        node = cluster.nodes[node_id]
        if not node.up:
            self._refuse(client, op, attempt, "connection refused")
            return
        request = to_request(op.input)
        request_id = node.next_request_id()
        if isinstance(request, bytes):
            node.read(request_id, request, cluster.now)
        else:
            refusal = node.propose(request_id, request)
            if refusal is not None:
                cluster.collect(node)
                self._refuse(client, op, attempt, refusal)
                return
        op.accepted = True
        self._waiting[request_id] = (client, op, attempt)
        cluster.poke(node)

    def _refuse(self, client: Client, op: ClientOp, attempt: int, reason: str) -> None:
        """The member refused at once: the client hears so, and tries the next endpoint."""
        refused = partial(self._refused, client, op, attempt, reason)
        self.cluster.schedule(self.cluster.client_delay(), refused, TaskKind.CLIENT)

    def _refused(self, client: Client, op: ClientOp, attempt: int, reason: str) -> None:
        if op.done or attempt != op.attempts:
            return
        self.cluster.emit(ClientEvent(client.id, op.node, "refused", f"{_describe(op)}: {reason}"))
        client.endpoint = (client.endpoint + 1) % len(client.endpoints)
        retry = partial(self._attempt, client, op)
        self.cluster.schedule(self.cluster.config.retry_backoff_ms, retry, TaskKind.CLIENT)

    def answer(self, answer: Answer) -> None:
        """A member answered a request: the answer goes back to the client that waits."""
        waiting = self._waiting.pop(answer.request_id, None)
        if waiting is None:
            self.cluster.expiry.answered(answer)  # a leader's lease expiry, or nobody's any more
            return
        client, op, attempt = waiting
        output = to_output(op.input, answer.result)
        arrives = partial(self._answer_arrives, client, op, attempt, output)
        self.cluster.schedule(self.cluster.client_delay(), arrives, TaskKind.CLIENT)

    def _answer_arrives(
        self, client: Client, op: ClientOp, attempt: int, output: LeaseOutput | str
    ) -> None:
        if op.done or attempt != op.attempts:
            return  # the client gave up already: the operation stays pending
        if isinstance(output, str):
            op.state, op.error = OpState.FAILED, output
        else:
            op.state, op.output, op.return_time = OpState.OK, output, self.cluster.now
            self.cluster.lease_monitor.answered(op)  # a grant promises its TTL
        self._finish(client, op, "answered")

    def _timed_out(self, client: Client, op: ClientOp) -> None:
        if op.done:
            return
        if op.accepted and not isinstance(op.input, Get):
            # A write some member accepted may still be applied: its outcome is unknown,
            # and this client process may issue nothing more (Jepsen's rule).
            op.state = OpState.TIMED_OUT
            client.process = self.cluster.new_process()
        else:
            # Refused everywhere, or a read: certainly no effect.
            op.state, op.error = OpState.FAILED, "timed out"
        self._finish(client, op, "timed out")

    def _finish(self, client: Client, op: ClientOp, what: str) -> None:
        client.current = None
        self.cluster.emit(ClientEvent(client.id, op.node, what, _describe(op)))
        if client.on_done is not None:
            client.on_done(op)


def _describe(op: ClientOp) -> str:
    return _DESCRIBE.describe_operation(op.input, op.output) if op.done else _call(op.input)


def _call(input: LeaseInput) -> str:
    return _DESCRIBE.describe_operation(input, None).removesuffix(" -> ? (never returned)")
