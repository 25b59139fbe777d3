"""A member's Prometheus metrics under etcd's names (chapter 10), in reading order:

* `families` -- the table of every family kv exposes: etcd 3.4's name, type, help, labels;
* `histogram` -- the latency histogram the driver fills (etcd's bucket boundaries);
* `grpc_metrics` -- the counts of the client gRPC servers' calls (``grpc_server_*``);
* `collector` -- a registry per member, read from the driver when scraped;
* `exposition` -- the text format Prometheus scrapes, written as etcd's Go client writes it.
"""
