"""Web glue shared by the reference servers (broker and vendor): errors to HTTP, strict JSON bodies, SQLite storage.

``netpay`` itself stays free of any web framework; this package is where FastAPI meets it.
"""
