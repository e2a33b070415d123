"""Shared test support: live loopback servers, fixtures and fakes. Every shared fake lives here and only here.

Modules named ``fixtures_*.py`` in this package are loaded as pytest plugins by ``tests/conftest.py``, so each
part of the system contributes its fixtures in its own file.
"""
