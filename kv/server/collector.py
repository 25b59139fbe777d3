"""How ``kv serve`` runs Python's cycle collector (chapter 1's driver, tuned for issue 12).

CPython frees most objects by reference counting; the cycle collector is for the few that
refer to each other in a ring. It runs by count, not by need: every 700 more container
objects made than freed (its default first threshold), it scans the young generation, and
every tenth of those the next, and so on up to the whole heap. A server making a dozen
short-lived objects per request (coroutines, futures, protobuf wrappers, dataclasses) hits
that count every few dozen requests, and the full scans walk every object of gRPC, protobuf
and the store. Measured on one member under puts (64 in flight): 0.48 s of collection in an
8 s run, about 7% of the server's CPU; most of it full scans of some 60 ms each.

So the driver, and only the driver (the cores and the tests keep Python's defaults):

* raises the first threshold to `YOUNG_THRESHOLD`: a young generation that big is still
  scanned in well under a millisecond, and the scans of the older ones come a thirtieth as
  often. Garbage cycles are still found, only later; at most `YOUNG_THRESHOLD` objects more
  wait for it.
* once the member serves clients, moves everything start-up made (the modules, gRPC's and
  protobuf's tables, the recovered store) out of the collector's sight (`gc.freeze`): it
  lives as long as the process, and a full scan then walks only what came after (measured:
  a full scan took a quarter of the time). The freeze itself costs nothing (it moves a
  list); the few garbage cycles start-up left, if any, are never freed.
"""

from __future__ import annotations

import asyncio
import gc

#: The young generation's threshold under ``kv serve`` (CPython's default: 700).
YOUNG_THRESHOLD = 20_000


def tune_for_serving() -> None:
    """Make the collector scan less often (call once, before the server starts)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


async def freeze_once_serving(ready: asyncio.Event) -> None:
    """Keep what start-up made out of every later scan, once ``ready`` is set (the member
    serves its clients)."""
    await ready.wait()
    gc.freeze()
