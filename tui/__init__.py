"""The live-cluster terminal UI (built in a later chapter)."""
