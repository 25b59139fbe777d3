"""One simulated member (chapter 3): `SimNode` and the pieces it is made of.

Modules, in reading order:

* `node` -- `SimNode`: a Raft core, its disk, its state machine, its server side; the Ready
  loop in two halves (the write starts; the write is done), crashes and restarts, applying.
* `view` -- `NodeView`: what a member shows the tests and the TUI (role, term, log, store),
  from its core while it runs and from its disk while it is down.
* `pending` -- what its server side keeps for clients while Raft works (`PendingRequests`),
  and the `Answer` it hands back.
* `state_codec` -- its snapshots' format (`encode_state`, `decode_state`) and its entries'
  requests (`decode_request`).
"""

from kv.sim.node.node import ReadyOutcome, SimNode
from kv.sim.node.pending import Answer
from kv.sim.node.state_codec import decode_request, decode_state, encode_state

__all__ = ["Answer", "ReadyOutcome", "SimNode", "decode_request", "decode_state", "encode_state"]
