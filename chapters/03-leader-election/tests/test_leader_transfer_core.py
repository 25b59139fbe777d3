"""Leadership transfer (thesis §3.10), as etcd does it (``etcdctl move-leader``).

"(1) The prior leader stops accepting new client requests. (2) The prior leader fully updates
the target server's log to match its own ... (3) The prior leader sends a TimeoutNow request
to the target server. This request has the same effect as the target server's election timer
firing: the target server starts a new election." If the transfer does not finish within an
election timeout, the leader gives up and takes requests again.
"""

from __future__ import annotations

import pytest

from kv.raft import MessageType, ProposalDroppedError, Role
from tests.raftnet import Network

M = MessageType


@pytest.mark.parametrize("extensions", [False, True], ids=["plain", "prevote+checkquorum"])
def test_leadership_moves_to_an_up_to_date_follower(extensions: bool) -> None:
    """With CheckQuorum the voters are inside the old leader's lease, and with PreVote a
    normal election would start with a pre-vote; a transfer's election bypasses both."""
    net = Network([1, 2, 3], pre_vote=extensions, check_quorum=extensions)
    net.elect(1)
    net.events.clear()
    net[1].transfer_leader(2)
    net.stabilize()
    assert net.leader() == 2
    assert net.terms() == {1: 2, 2: 2, 3: 2}
    lines = net.event_lines()
    assert lines[0] == "n1 started transferring leadership to n2 at term 1"
    assert "n2 became candidate at term 2" in lines
    assert "n2 became pre-candidate at term 1" not in lines


def test_the_leader_first_brings_a_lagging_transferee_up_to_date() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.crash(3)
    for i in range(5):
        net.propose(1, b"v%d" % i)
    net.restart(3)
    net[1].transfer_leader(3)
    net.stabilize()
    assert net.leader() == 3
    assert net.log(3) == net.log(1)[: len(net.log(3))]
    net.propose(3, b"new leader")
    assert net.applied(1)[-1] == b"new leader"


def test_a_follower_forwards_a_transfer_request_to_the_leader() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net[3].transfer_leader(2)
    net.stabilize()
    assert net.leader() == 2


def test_the_leader_refuses_proposals_while_a_transfer_is_under_way() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.drop_if = lambda m: m.type is M.TIMEOUT_NOW
    net[1].transfer_leader(2)
    net.stabilize()
    assert net[1].status().lead_transferee == 2
    with pytest.raises(ProposalDroppedError):
        net[1].propose(b"x")
    assert [str(event) for event in net[1].take_events()] == [
        "n1 dropped a proposal at term 1: leadership transfer to n2 in progress"
    ]


def test_a_transfer_that_does_not_finish_in_an_election_timeout_is_abandoned() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.drop_if = lambda m: m.type is M.TIMEOUT_NOW
    net[1].transfer_leader(2)
    net.stabilize()
    net.tick(1, 10)
    assert net[1].status().lead_transferee == 0
    assert net[1].role is Role.LEADER
    net.propose(1, b"accepted again")
    assert net.applied(2) == [b"accepted again"]


def test_transferring_to_itself_does_nothing() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net[1].transfer_leader(1)
    net.stabilize()
    assert net.leader() == 1
    assert net[1].status().lead_transferee == 0
