"""Membership changes on a simulated cluster: members added as learners, promoted, removed
(chapter 5).

Modules, in reading order:

* `operator` -- `Membership` (``cluster.membership``), the operator: one change at a time,
  each a `kv.raft.ConfChange` proposed to the leader after etcd's checks, asked again until
  applied; `MemberOp`, one change from request to answer.
* `steps` -- the changes as steps of a scenario (`AddLearner`, `PromoteLearner`,
  `RemoveMember`, `RemoveLeader`, `RemoveFollower`), and `churn_for`, a seed's schedule of
  them (``python -m kv.sim --seed 7 --faults --membership``).
"""
