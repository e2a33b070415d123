"""vendor_stub package."""
