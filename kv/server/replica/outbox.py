"""A Ready's messages, without those a later one of the same Ready makes redundant
(chapter 4; issue 12's batching).

A busy leader's Ready often holds two appends to each follower. Answers stepped since the
last Ready moved the commit index, and the core told every follower at once with an append
that carries no entries (`kv.raft.leader.bcast_append`); then the writes queued meanwhile were
proposed, and each follower got a second append, with the same anchor (prevLogIndex and
prevLogTerm), the entries, and a commit index at least as high. The second says all the first
does. A follower that gets both in one frame answers both, and so does its Ready: two answers
where one would do.

Every message a peer receives costs both members CPU (encoded, framed, decoded, stepped), so the
driver leaves out a message that a later one to the same member, in the same Ready, makes
redundant:

* an append without entries, when a later append has the same anchor and a commit index at
  least as high;
* an accepted answer to an append, when a later accepted answer of the same term goes at least
  as far (the leader keeps the highest index a member acknowledged; `Progress.maybe_update`).

Leaving a message out is always safe in Raft, which is built for a network that loses them
(§5.3); here the member it was for gets the same news in the same frame. The core is not
changed for it: which messages travel together is the driver's business.
"""

from __future__ import annotations

from collections.abc import Sequence

from kv.raft import Message, MessageType


def without_superseded(messages: Sequence[Message]) -> tuple[Message, ...]:
    """``messages`` in order, less each one the next message of its type to the same member
    makes redundant."""
    kept: list[Message] = []
    later: dict[tuple[int, MessageType], Message] = {}
    for message in reversed(messages):
        if message.type not in (MessageType.APP, MessageType.APP_RESP):
            kept.append(message)
            continue
        key = (message.to, message.type)
        after = later.get(key)
        if after is not None and _supersedes(after, message):
            continue
        later[key] = message
        kept.append(message)
    kept.reverse()
    return tuple(kept)


def _supersedes(later: Message, earlier: Message) -> bool:
    """Does ``later`` (the same type, to the same member) say all that ``earlier`` says?"""
    if later.term != earlier.term:
        return False
    if earlier.type is MessageType.APP:
        return (
            not earlier.entries
            and later.index == earlier.index
            and later.log_term == earlier.log_term
            and later.commit >= earlier.commit
        )
    return not earlier.reject and not later.reject and later.index >= earlier.index
