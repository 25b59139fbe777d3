"""bbolt, etcd's storage engine, as a file format: read and write its files (chapter 2).

etcd keeps its applied state in one bbolt file (``member/snap/db``), and ``etcdctl snapshot
save`` writes a copy of that file followed by its SHA-256. kv's own backend is SQLite, so to
trade backups with etcd kv reads and writes bbolt's format itself. The format is small:

The file is an array of pages, 4096 bytes each on Linux; page ``n`` starts at byte
``n * 4096``. Every page starts with a 16-byte header::

    +---------+---------+---------+------------+
    | id  u64 | type u16| count u16| overflow u32|   then the page's body
    +---------+---------+---------+------------+

* Pages 0 and 1 are **meta** pages: magic ``0xED0CDAED``, version 2, the page size, the root
  bucket's page, the freelist's page, the *high water mark* (the first page id past the
  data) and a transaction id, closed by an FNV-1a checksum. A commit overwrites the older of
  the two, so a torn write leaves the other one valid: the reader takes the valid meta with
  the higher transaction id.
* A **freelist** page lists the ids of pages no tree uses, for reuse (etcd 3.4 does not
  write it, ``meta.freelist = 2^64-1``, and free pages are found by walking the trees).
* **Branch** and **leaf** pages make B+trees. A branch holds ``(first key, child page id)``
  pairs; a leaf holds ``(key, value)`` pairs. Both keep their fixed-size elements first and
  the bytes after them, each element's ``pos`` pointing at its key::

      leaf page:  | header | elem 0 | elem 1 | ... | key 0 value 0 | key 1 value 1 | ...
                              |pos--------------------^
      elem = flags u32, pos u32, key size u32, value size u32

* A page whose body does not fit takes ``1 + overflow`` consecutive pages (a large value).
* A **bucket** is a B+tree of its own; the root tree's keys are the top-level buckets'
  names. A leaf element with the bucket flag holds a bucket header, ``root page u64,
  sequence u64``. A bucket small enough (no sub-buckets, its leaf at most a quarter page)
  is *inline*: root 0, and its one leaf page follows the header inside the parent's value.

A tree of three pages, the root bucket naming two buckets, one of them inline::

    meta 0/1 --root--> [leaf 3: "key" -> {root 4}, "meta" -> {root 0, inline leaf ...}]
                                            |
                                  [branch 4: "\\x00..01_" -> 5, "\\x00..09_" -> 6]
                                          /                \\
                                   [leaf 5: revisions]   [leaf 6: revisions]

Modules: `kv.bbolt.page` (the records), `kv.bbolt.reader` (`BoltFile`: walk and check a
file), `kv.bbolt.writer` (`write`: a whole file from sorted buckets, in one pass). None of
them knows what etcd puts in the buckets: `kv.server.disk.etcd_db` does.
"""

from kv.bbolt.page import PAGE_SIZE, BoltError
from kv.bbolt.reader import BoltFile, Bucket, open_file
from kv.bbolt.writer import NewBucket, write

__all__ = ["PAGE_SIZE", "BoltError", "BoltFile", "Bucket", "NewBucket", "open_file", "write"]
