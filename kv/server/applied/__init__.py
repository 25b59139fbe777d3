"""The applied state: what a member's committed entries made of its backend (chapters 1, 2,
5 and 6).

Modules, in reading order:

* `state_machine` -- `StateMachine`: log entries applied to the store in order, exactly once.
* `apply` -- etcd's KV requests carried out on the MVCC store (ranges, puts, deletes,
  compaction), with etcd's answers.
* `txn` -- transactions (chapter 6): compares decided first, then one branch at one revision.
* `alarms` -- `AlarmStore`: NOSPACE and CORRUPT, raised and cleared through the log; what an
  alarm refuses.
* `members` -- `MemberStore`: the member table (names, URLs, learners) beside Raft's ids.
* `applied_state` -- the backend as a whole: each applied batch committed with the consistent
  index, the state machine opened over it, copied for a follower, replaced by a leader's.
* `cached_history` -- `CachedHistory`: the backend's history with its recent entries kept in
  memory, so a Range of a recent pair does not query SQLite.
"""
