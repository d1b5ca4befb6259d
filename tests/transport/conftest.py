"""The transport tests use the remote tests' servers."""

from tests.remote.conftest import daemons

__all__ = ["daemons"]
