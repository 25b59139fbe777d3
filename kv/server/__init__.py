"""kv.server: the asyncio/gRPC side of kv -- services, validation, the apply layer (chapter 1)."""
