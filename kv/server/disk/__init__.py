"""What a member keeps on disk, and where (chapters 2 and 5).

Modules, in reading order:

* `data_dir` -- `DataDir`: etcd's layout of ``<data-dir>/member/{wal,snap}``.
* `raft_disk` -- `RaftDisk`: Raft's log, hard state and snapshots in the chapter 2 WAL and
  snapshot files, mirrored in the `kv.raft.MemoryStorage` the core reads; `SnapshotPolicy`.
* `fsync_thread` -- `FsyncThread`: the thread that runs the WAL's fsync while the event loop
  serves on.
* `etcd_db` -- the backend as etcd 3.4's bbolt buckets and back: what the Snapshot RPC sends
  and what a snapshot saved from etcd restores.
* `snapshot_file` -- ``kv snapshot status`` and ``kv snapshot restore``: a saved backend
  inspected, or turned into a new data directory.
"""
