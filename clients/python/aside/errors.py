"""errors -- the exceptions of the aside client.

The server answers every failure with an HTTP status and a body
``{"error": {"code": "...", "message": "..."}}``. The client turns that answer into one
exception class per status, so callers can catch what they care about (``except
aside.NotFound``) and still read the server's own words: every exception carries ``code``
(the server's machine-readable code, such as ``not_found`` or ``bad_query``), ``message``
(its human-readable text) and ``status`` (the HTTP status, or ``None`` when no answer came).
``str(exc)`` is ``"<status> <code>: <message>"``.

The classes form a small tree rooted at ``AsideError``: 5xx answers share ``ServerError``,
and failures to reach the server at all are ``ConnectionFailed``. ``Timeout`` is also a
built-in ``TimeoutError`` and ``ConnectionFailed`` a built-in ``ConnectionError``, so code that
handles those catches them too. A status without a class
of its own becomes the nearest parent (``AsideError`` for 4xx, ``ServerError`` for 5xx). A few
codes refine their status's class: 409 ``wrong_type`` is ``WrongType`` (a ``Conflict``), 507
``full`` is ``Full`` (a ``ServerError``).
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional, Tuple, Type

__all__ = [
    "AsideError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "Conflict",
    "WrongType",
    "TooLarge",
    "InvalidValue",
    "ServerError",
    "BadGateway",
    "Unavailable",
    "Timeout",
    "Full",
    "ConnectionFailed",
    "ShmUnavailable",
    "error_from_response",
]


class AsideError(Exception):
    """Base class of every error raised by the client.

    Attributes:
        code: the server's error code (``"not_found"``, ``"bad_query"``, ...), or a code chosen
            by the client when the server did not give one.
        message: the server's message.
        status: the HTTP status of the answer, or ``None`` when there was no answer.
        type: for a failed user function, the Python exception's type (``"ZeroDivisionError"``),
            else ``None``.
        traceback: for a failed user function, the traceback lines of its own file(s), else an
            empty list.
    """

    def __init__(self, code: str, message: str, status: Optional[int] = None,
                 type: Optional[str] = None, traceback: Optional[List[str]] = None) -> None:
        # Exception's own initialiser, not the next class's: for the classes that are also
        # OSErrors (Timeout, ConnectionFailed), OSError's would read the arguments as errno,
        # strerror and filename and keep only two of them in ``args``.
        Exception.__init__(self, code, message, status, type, traceback)
        self.code = code
        self.message = message
        self.status = status
        self.type = type
        self.traceback = list(traceback or [])

    def __str__(self) -> str:
        prefix = f"{self.status} " if self.status is not None else ""
        kind = f" ({self.type})" if self.type else ""
        return f"{prefix}{self.code}{kind}: {self.message}"


class BadRequest(AsideError):
    """400: a bad parameter, path or query."""


class Unauthorized(AsideError):
    """401: the request needs credentials."""


class Forbidden(AsideError):
    """403: access refused (for instance the system of record denied it)."""


class NotFound(AsideError):
    """404: unknown key, function or route."""


class Conflict(AsideError):
    """409: a key clashing with a folder, or an operation for another type."""


class WrongType(Conflict):
    """409 with code ``wrong_type``: an operation for another type than the key holds (a list
    operation on a map, a JSON Pointer edit of a list, ...); nothing was changed."""


class TooLarge(AsideError):
    """413: a body, value or result over a limit."""


class InvalidValue(AsideError):
    """422: the value is not valid for its type (for instance invalid JSON for a .json key)."""


class ServerError(AsideError):
    """5xx: the server or the system of record behind it failed."""


class BadGateway(ServerError):
    """502: the system of record failed."""


class Unavailable(ServerError):
    """503: the server cannot serve now."""


class Timeout(ServerError, TimeoutError):
    """504: the system of record, or a query, took too long. Also a built-in ``TimeoutError``."""


class Full(ServerError):
    """507 with code ``full``: what must stay in memory (collections, pinned keys) would pass
    the server's memory budget; nothing was changed."""


class ConnectionFailed(AsideError, ConnectionError):
    """No answer: the server could not be reached, or the client's timeout expired. Also a
    built-in ``ConnectionError``.

    ``code`` is ``"connection_failed"`` and ``status`` is ``None``.
    """


class ShmUnavailable(AsideError):
    """``transport="shm"`` was asked for but the shared-memory file could not be used.

    ``code`` is ``"shm_unavailable"`` and ``status`` is ``None``; the cause (an ``OSError``
    or a pyarrow error) is chained as ``__cause__``.
    """


_BY_STATUS: Dict[int, Type[AsideError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    422: InvalidValue,
    502: BadGateway,
    503: Unavailable,
    504: Timeout,
}


_BY_CODE: Dict[Tuple[int, str], Type[AsideError]] = {
    (409, "wrong_type"): WrongType,
    (507, "full"): Full,
}


def error_class(status: int, code: Optional[str] = None) -> Type[AsideError]:
    """The exception class for an HTTP status and the server's error code."""
    cls = _BY_CODE.get((status, code or "")) or _BY_STATUS.get(status)
    if cls is not None:
        return cls
    return ServerError if status >= 500 else AsideError


def error_from_response(status: int, body: bytes, reason: str = "") -> AsideError:
    """Build the exception for an error answer.

    The body is expected to be ``{"error": {"code", "message"}}``; any other body (a proxy's
    page, for instance) gives the code ``"http_<status>"`` and the body's first 500 characters,
    or the reason phrase, as the message.
    """
    code: Optional[str] = None
    message: Optional[str] = None
    kind: Optional[str] = None
    lines: List[str] = []
    try:
        doc = json.loads(body)
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            code = err.get("code") if isinstance(err.get("code"), str) else None
            message = err.get("message") if isinstance(err.get("message"), str) else None
            kind = err.get("type") if isinstance(err.get("type"), str) else None
            trace = err.get("traceback")
            if isinstance(trace, list):
                lines = [line for line in trace if isinstance(line, str)]
    except ValueError:
        pass
    if code is None:
        code = f"http_{status}"
    if message is None:
        text = body[:500].decode("utf-8", "replace").strip()
        message = text or reason or f"HTTP {status}"
    return error_class(status, code)(code, message, status, kind, lines)
