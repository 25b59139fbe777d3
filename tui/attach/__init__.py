"""Attach mode of the TUI (``kv tui --endpoints URL,...``): watch a real cluster.

Issue 9 of the TUI chapter: a real cluster -- a ``kv cluster``, three ``kv serve``, or the
real etcd -- watched through its public gRPC API only (`kv.client.KVClient`): each member's
``Maintenance.Status`` polled, the keys browsed a page at a time, every change under a prefix
watched live, puts, deletes and a leader transfer sent; on a ``kv cluster``, its members
killed, restarted and partitioned with the same functions as ``kv cluster
kill/restart/partition/heal``.

Reading order, pure parts first:

=============================  ==============================================================
`tui.attach.model`             the poll model: Status -> row, roles as words, DOWN and the
                               backoff schedule, history, what changed between two polls
`tui.attach.browse`            paging a key space (limit + the key after the last), previews
`tui.attach.poller`            the I/O: Status and MemberList per endpoint, with timeouts
`tui.attach.local`             finding a ``kv cluster`` behind the endpoints; its controls
`tui.attach.members`           widget: the members table
`tui.attach.trends`            widget: sparklines of term, raft index and db size
`tui.attach.keys`              widget: the key browser
`tui.attach.edit`              modal: the put/delete box
`tui.attach.choose`            modal: choosing one member, or several
`tui.attach.feed`              the watch feed's model: replies -> lines, bounded, paused,
                               where to resume
`tui.attach.watchfeed`         widget: the live watch feed, resuming on another member
`tui.attach.leases`            the lease list's model: countdowns between polls, the cap
`tui.attach.leasebox`          modals: a new lease's TTL, and confirming a revoke
`tui.attach.leaselist`         widget: the leases with their countdowns and keys
`tui.attach.help`              the help screen, from the bindings
`tui.attach.app`               `AttachApp`: the tabs, the poll worker, the actions
=============================  ==============================================================

Run it alone with ``python -m tui.attach --endpoints 127.0.0.1:2379,...``.
"""

from tui.attach.app import AttachApp

__all__ = ["AttachApp"]
