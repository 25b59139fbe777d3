"""A member's HTTP endpoints (chapter 10), in reading order:

* `routes` -- ``/metrics``, ``/health``, ``/version``, answered as etcd 3.4 answers them;
* `health` -- etcd's health check: alarms, a leader, a quorum read;
* `listener` -- a small HTTP/1.1 server (``--listen-metrics-urls``,
  ``--listen-client-http-urls``).
"""
