"""One FastAPI router per broker resource."""
