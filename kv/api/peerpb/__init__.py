"""kv's peer service, generated from peer.proto (do not edit *_pb2*)."""
