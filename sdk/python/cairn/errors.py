"""The one exception the SDK raises for a failed call."""

from __future__ import annotations

from typing import Optional

import grpc

__all__ = ["CairnError", "StatusCode"]

StatusCode = grpc.StatusCode
"""The gRPC (Connect) codes a :class:`CairnError` carries: ``StatusCode.NOT_FOUND``, ..."""


class CairnError(Exception):
    """A call to cairn failed.

    ``code`` is the call's gRPC status code (the same as the Connect code the
    Go SDK and the CLI report), ``message`` the server's explanation, written
    for a person. ``master`` names the master (or worker) that answered last,
    when one did.

    The codes a program typically acts on:

    - ``UNAVAILABLE``: no master could answer within the retry budget (each
      was unreachable, had no leader, or lost leadership). Reads may be
      repeated. A write may or may not have been made: the message says
      which ("may or may not have been made" when leadership moved while
      it was in flight); check before repeating one that must not be doubled.
    - ``NOT_FOUND``, ``INVALID_ARGUMENT``, ``FAILED_PRECONDITION``: the
      request itself is wrong for the cluster's state; repeating it as it
      is will not help.
    - ``UNAUTHENTICATED`` (no token, or an unknown or revoked one) and
      ``PERMISSION_DENIED`` (the token's role may not make the call).
    - ``DATA_LOSS``: a read found the only copies of a file untrustworthy.
    """

    def __init__(self, code: grpc.StatusCode, message: str, master: Optional[str] = None) -> None:
        self.code = code
        self.message = message
        self.master = master
        where = f" ({master})" if master else ""
        super().__init__(f"{code.name}{where}: {message}")

    @classmethod
    def from_rpc(cls, err: grpc.RpcError, master: Optional[str] = None) -> "CairnError":
        """Wraps a grpc.RpcError (a failed call) as a CairnError."""
        code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
        details = err.details() if hasattr(err, "details") else str(err)
        return cls(code or grpc.StatusCode.UNKNOWN, details or "", master)
