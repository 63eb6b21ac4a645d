"""Mags Python SDK: run scripts in instant Linux sandboxes on a Mags server.

    from mags import Mags
    result = Mags().run_and_wait("echo Hello World")

``mags.TimeoutError`` and ``mags.ConnectionError`` share names with Python builtins; they are left
out of ``from mags import *`` so they never shadow them. Use them as ``mags.TimeoutError``.
"""
from .client import Mags
from .errors import (
    AuthenticationError,
    ConnectionError,
    MagsError,
    NotFoundError,
    TimeoutError,
    ValidationError,
)
from .exec import ExecOutput
from .raw import RawOutput

__version__ = "0.1.0"

__all__ = [
    "Mags",
    "MagsError",
    "AuthenticationError",
    "NotFoundError",
    "ValidationError",
    "RawOutput",
    "ExecOutput",
    "__version__",
]
