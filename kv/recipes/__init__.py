"""Recipes: what people build on etcd, as small modules over kv's client (chapter 9).

Modules, in reading order:

* `configuration` -- dynamic configuration: follow a prefix of settings and apply every change
  once, in revision order, across disconnects and compactions.
"""
