"""Chapter 8's demo: a store, a watch hub, and watchers reading the store's history as a cursor.

Run: ``python3 chapters/08-watches/demo.py``
"""

from __future__ import annotations

from kv.mvcc import Store
from kv.watch import FROM_KEY, WatchHub, WatchRequest, WatchResponse


def show(who: str, replies: list[WatchResponse]) -> None:
    for reply in replies:
        if reply.created:
            print(f"{who}: created watch {reply.watch_id} at revision {reply.revision}")
        elif reply.compact_revision:
            print(f"{who}: canceled, history compacted at {reply.compact_revision}")
        else:
            events = ", ".join(
                f"{e.type.name} {e.kv.key.decode()}@{e.revision}" for e in reply.events
            )
            print(f"{who}: reply at revision {reply.revision}: {events}")


def main() -> None:
    store = Store()
    hub = WatchHub(store)
    store.put(b"color", b"red")
    store.put(b"color", b"green")
    print(f"the store is at revision {store.current_revision}")

    live = hub.open_stream()
    live.create(WatchRequest(b"", FROM_KEY))  # every key, from the next write: synced
    past = hub.open_stream()
    past.create(WatchRequest(b"color", start_revision=1))  # from the past: unsynced
    show("live", live.take())
    show("past", past.take())

    with store.write() as txn:  # one request, two keys, one revision: one reply
        txn.put(b"color", b"blue")
        txn.put(b"shape", b"round")
    show("live", live.take())
    show("past", past.take())  # nothing yet: it waits for catch-up
    hub.catch_up()
    show("past", past.take())  # the history it missed, in one reply

    store.compact(store.current_revision)
    late = hub.open_stream()
    late.create(WatchRequest(b"color", start_revision=2))
    hub.catch_up()
    show("late", late.take())


if __name__ == "__main__":
    main()
