"""Helpers for chapter 9's recipe tests (chapters/09-what-etcd-is-for/tests) and the Lock and
Election differential tests (tests/compat): sessions on a test member (`sessions`), waiting
for a contender to stand in line (`lines`), running a follower for a block (`running`)."""
