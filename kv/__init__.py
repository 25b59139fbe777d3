"""kv: build etcd in Python, one chapter at a time."""

__version__ = "0.1.0"
