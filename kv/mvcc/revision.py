"""Revisions: the logical clock of an MVCC store (chapter 1).

Every write request that changes the store gets the next *main* revision; the operations
inside it (a transaction may put and delete several keys) are numbered by a *sub* revision.
The pair orders every change the store has ever made, and it is what etcd uses as the key of
its backend: the stored bytes are the main revision and the sub revision as 8-byte big-endian
integers joined by ``_`` (etcd: ``mvcc/revision.go``), with a ``t`` appended for a tombstone.
"""

from __future__ import annotations

from dataclasses import dataclass

REVISION_BYTES_LEN = 17  # 8 bytes main, "_", 8 bytes sub
TOMBSTONE_MARK = b"t"


# --8<-- [start:revision]
@dataclass(frozen=True, slots=True, order=True)
class Revision:
    """One change to the store: which write request (``main``) and which op in it (``sub``)."""

    main: int
    sub: int = 0

    def to_bytes(self, *, tombstone: bool = False) -> bytes:
        """Encode as etcd encodes a backend key: main, ``_``, sub, and ``t`` for a tombstone."""
        encoded = self.main.to_bytes(8, "big") + b"_" + self.sub.to_bytes(8, "big")
        return encoded + TOMBSTONE_MARK if tombstone else encoded

    # --8<-- [end:revision]

    @classmethod
    def from_bytes(cls, data: bytes) -> Revision:
        """Decode a backend key made by `to_bytes` (a tombstone mark is ignored)."""
        if len(data) not in (REVISION_BYTES_LEN, REVISION_BYTES_LEN + 1) or data[8:9] != b"_":
            raise ValueError(f"not a revision key: {data!r}")
        return cls(int.from_bytes(data[:8], "big"), int.from_bytes(data[9:17], "big"))

    def __str__(self) -> str:
        return f"{self.main}.{self.sub}"

    def __deepcopy__(self, memo: dict[int, object]) -> Revision:
        return self  # immutable: shared by a deep copy (`kv.sim.Cluster.copy`'s keyframes)
