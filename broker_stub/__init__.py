"""broker_stub package."""
