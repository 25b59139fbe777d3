"""The lessor's errors, with etcd's messages (chapter 7).

etcd's ``lease`` package has its own errors (``lease/lessor.go``); the server turns each into
the gRPC status its clients know (``etcdserver/api/v3rpc/rpctypes``), so each one here carries
the lessor's own words and the server maps it (`kv.server.errors.from_lease`).
"""

from __future__ import annotations


class LeaseError(Exception):
    """An error of the lessor; ``message`` is etcd's text for it."""

    message = "lease error"

    def __init__(self) -> None:
        super().__init__(self.message)


class LeaseNotFoundError(LeaseError):
    """No lease has this ID (never granted, revoked, or expired and revoked)."""

    message = "lease not found"


class LeaseExistsError(LeaseError):
    """A client asked for an ID that a live lease already has."""

    message = "lease already exists"


class LeaseTTLTooLargeError(LeaseError):
    """The TTL asked for is above `kv.lease.lessor.MAX_TTL`."""

    message = "too large lease TTL"


class NotPrimaryError(LeaseError):
    """Only the primary lessor (the leader's) renews leases and tells their remaining TTL."""

    message = "not a primary lessor"


class LeaseExpiredError(LeaseError):
    """The lease has expired but is not revoked yet: a renewal must wait for the revoke (and
    then answer "not found"), since the leader has already decided the lease is over."""

    message = "lease expired"
