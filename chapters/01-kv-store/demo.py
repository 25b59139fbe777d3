"""Chapter 1 demo: watch revisions, generations and compaction happen.

Run it with ``python3 chapters/01-kv-store/demo.py``. It drives the pure `Store` directly (no
server), printing what a reader would ask ``etcdctl`` at each step, then shows the key index.
"""

from __future__ import annotations

from kv.mvcc import CompactedError, KeyValue, Store


def show(kvs: list[KeyValue]) -> str:
    if not kvs:
        return "(nothing)"
    return ", ".join(
        f"{kv.key.decode()}={kv.value.decode()} "
        f"[create {kv.create_revision}, mod {kv.mod_revision}, version {kv.version}]"
        for kv in kvs
    )


def step(store: Store, action: str) -> None:
    print(f"{action:<34} -> store is at revision {store.current_revision}")


def main() -> None:
    store = Store()
    step(store, "a fresh store")
    store.put(b"color", b"red")
    step(store, "put color=red")
    store.put(b"color", b"green")
    step(store, "put color=green")
    with store.write() as txn:  # one request, two operations: one revision, two sub revisions
        txn.put(b"shape", b"circle")
        txn.put(b"size", b"small")
    step(store, "put shape and size in one request")
    store.delete_range(b"color")
    step(store, "delete color")
    store.put(b"color", b"blue")
    step(store, "put color=blue (a new generation)")

    print("\nThe same key, read at every revision:")
    for revision in range(1, store.current_revision + 1):
        print(f"  get color --rev {revision}: {show(store.range(b'color', revision=revision).kvs)}")

    print("\nThe key index of 'color' (one list of revisions per generation):")
    key_index = store.index.key_index(b"color")
    assert key_index is not None
    for generation in key_index.generations:
        print("  ", [str(revision) for revision in generation.revisions] or "(current, empty)")

    every_key = store.range(b"\x00", b"\x00").kvs  # key and range_end both \0: all keys
    print(f"\nEvery key now: {show(every_key)}")
    store.compact(5)
    print("\nAfter compaction at revision 5:")
    print(f"  get color --rev 5: {show(store.range(b'color', revision=5).kvs)}")
    try:
        store.range(b"color", revision=4)
    except CompactedError as error:
        print(f"  get color --rev 4: error: {error.message}")
    print(f"  stored changes left: {[str(revision) for revision in store.history]}")


if __name__ == "__main__":
    main()
