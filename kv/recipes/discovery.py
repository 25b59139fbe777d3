"""Service discovery: instances announce themselves under a prefix for as long as they live,
and clients follow the list (chapter 9).

An instance of the service ``web`` registers by putting ``/services/web/<instance id>`` = its
address, attached to a `Session`'s lease that it keeps alive (`register`). A client that wants
the instances follows the prefix with a `ServiceWatcher`: it lists them at one revision, then
watches from that revision + 1, so it sees every instance join and leave, in revision order,
once each. That load-then-watch loop is the one dynamic configuration uses: the watcher *is*
a `kv.recipes.configuration.ConfigFollower` over the service's prefix, whose settings are the
instances::

    async with KVClient(endpoint) as client:
        registration = await register(client, "web", "web-1", b"10.0.0.7:8080", ttl=10)
        ...  # serve; leaving: await registration.close()

    watcher = ServiceWatcher(endpoints, "web")
    task = asyncio.create_task(watcher.follow())
    watcher.instances  # {"web-1": b"10.0.0.7:8080", ...}, current to watcher.revision

Failure cases:

* **An instance crashes** (or hangs, or is cut off from the cluster): nobody renews its lease,
  and when the TTL runs out the cluster deletes its key at one revision (chapter 7). Every
  watcher sees that delete and drops the instance -- after the TTL, never before, since the
  key is there until the lease ends. Until then clients may still pick the dead instance: a
  short TTL shortens that window, and clients must still handle a refused connection.
* **An instance is alive but its lease expired** (a pause longer than the TTL): its key is
  gone and it is no longer listed though it still serves. Its `Session.done` is set: it must
  register again, with a new session.
* **A watcher's member fails**: the watcher resumes on another member from the last revision
  it applied + 1, missing nothing (see `ConfigFollower`).
* **The history a watcher needs was compacted** while it was away: it lists the instances
  again and applies the difference (`Change.resynced`), so the list ends right, though an
  instance that came and went meanwhile was never seen.
* **Two instances register one id**: the later put moves the key to its own lease, with its
  address; the earlier instance is no longer listed, and its session's end no longer removes
  the key. Give each instance a unique id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kv.client import KVClient
from kv.recipes.configuration import Apply, Change, ConfigFollower
from kv.recipes.session import DEFAULT_TTL, Session

#: Where every service's instances are listed, one prefix per service.
SERVICES = b"/services/"


def service_prefix(service: str) -> bytes:
    """``/services/<service>/``: the prefix an instance of ``service`` registers under."""
    return SERVICES + service.encode() + b"/"


# --8<-- [start:register]
@dataclass(frozen=True, slots=True)
class Registration:
    """An instance's key, on the lease of the session that keeps it listed."""

    session: Session
    key: bytes
    #: The revision the key was written at.
    revision: int

    async def close(self) -> None:
        """Leave the list now: revoke the lease, which deletes the key."""
        await self.session.close()


async def register(
    client: KVClient, service: str, instance: str, address: bytes, *, ttl: int = DEFAULT_TTL
) -> Registration:
    """List ``instance`` of ``service`` at ``address`` for as long as this process lives."""
    session = await Session.open(client, ttl=ttl)
    key = service_prefix(service) + instance.encode()
    response = await client.put(key, address, lease=session.lease_id)
    return Registration(session, key, response.header.revision)


# --8<-- [end:register]


# --8<-- [start:watcher]
@dataclass(slots=True)
class ServiceWatcher:
    """The instances of ``service``, kept current from any of ``endpoints``.

    ``on_change`` (optional) is called with each revision's changes, as `ConfigFollower`'s
    ``apply``: a change whose value is None is an instance that left.
    """

    endpoints: Sequence[str]
    service: str
    on_change: Apply | None = None
    follower: ConfigFollower = field(init=False)

    def __post_init__(self) -> None:
        apply = self.on_change or _ignore
        self.follower = ConfigFollower(self.endpoints, service_prefix(self.service), apply)

    async def follow(self) -> None:
        """List the instances, then follow them until cancelled (going member to member)."""
        await self.follower.follow()

    @property
    def instances(self) -> dict[str, bytes]:
        """Instance id -> address, as of `revision`."""
        start = len(self.follower.prefix)
        return {key[start:].decode(): value for key, value in self.follower.settings.items()}

    @property
    def revision(self) -> int:
        """The revision `instances` reflect."""
        return self.follower.revision


# --8<-- [end:watcher]


def _ignore(changes: list[Change]) -> None:
    """The ``apply`` of a watcher that only reads `ServiceWatcher.instances`."""
