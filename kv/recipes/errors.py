"""What the recipes raise besides the client's `kv.server.errors.EtcdError` (chapter 9).

The messages are etcd's own (clientv3/concurrency), word for word: the server's Lock and
Election services send them to clients as they are.
"""

from __future__ import annotations


class RecipeError(Exception):
    """A recipe could not do what was asked; ``str(error)`` is etcd's message."""

    message = "recipe failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class NotLeaderError(RecipeError):
    """Proclaim by a candidate that does not (or no longer) lead (etcd: ErrElectionNotLeader)."""

    message = "election: not leader"


class NoLeaderError(RecipeError):
    """Leader asked of an election that nobody leads (etcd: ErrElectionNoLeader)."""

    message = "election: no leader"


class LostWatchError(RecipeError):
    """The watch a waiter relied on ended before the key it watched was deleted (etcd:
    concurrency/key.go ``waitDelete``)."""

    message = "lost watcher waiting for delete"
