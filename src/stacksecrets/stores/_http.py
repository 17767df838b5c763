"""What every HTTP store shares (ZenML, Vault, and any later one): one send path, one reader.

- ``send_logged``: send a request, read its answer capped (``read_capped``), one debug event
  per request (status or error, duration; never a body or a header), httpx's failures as ours.
- ``read_capped``: an answer read as a stream and refused past ``MAX_BODY_BYTES``, so a hostile
  or broken server cannot make a call grow without bound.
- ``json_object``: an answer's JSON object, or a ``StoreError`` that does not carry the body.
- ``status_error``: the library's error for an HTTP status no store maps itself; 429, and 503
  with ``Retry-After``, are *throttling* (``StoreUnavailableError(throttled=True)``: the
  server said slow down), the other transient statuses plain failures worth asking again.
- ``retry_after`` / ``http_date``: the ``Retry-After`` and ``Date`` headers.
- ``is_loopback``: whether a host is this machine (plain HTTP to it is not a warning).
- A log filter that masks cookie values in httpcore's DEBUG records (a login answer's cookie
  is a bearer token).

httpx is imported only when a request is sent: this module is cheap to import.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import logging
import math
import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._errors import StoreError, StoreUnavailableError
from .._logging import logger
from .._secret import MASK

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_BODY_BYTES",
    "THROTTLING_STATUSES",
    "TRANSIENT_STATUSES",
    "http_date",
    "is_loopback",
    "json_object",
    "read_capped",
    "retry_after",
    "send_logged",
    "unavailable",
]

#: The largest answer read (decoded); a larger one is refused while it streams in.
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Statuses worth asking again (as ZenML's and Vault's own clients retry them); a 500 is a
#: bug on the server, not worth asking again.
TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})
#: Statuses that say "slow down" by themselves (503 does only with a ``Retry-After``).
THROTTLING_STATUSES = frozenset({429})

_NOT_JSON = object()
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_SET_COOKIE = re.compile(r"""(b['"]set-cookie['"], )b(['"])(?:\\.|(?!\2).)*\2""", re.IGNORECASE)


class _MaskCookies(logging.Filter):
    """Masks cookie values in httpcore's DEBUG records of response headers.

    httpcore logs every response's headers at DEBUG, and a login answer (ZenML's) sets the
    bearer token as a cookie: an application that turns on DEBUG logging would write the token
    out. This filter changes only those records, not any logging configuration.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "set-cookie" in message.lower():
            record.msg, record.args = _SET_COOKIE.sub(rf"\1b'{MASK}'", message), ()
        return True


def _mask_cookies_in_httpcore_logs() -> None:
    for name in ("httpcore.http11", "httpcore.http2"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _MaskCookies) for f in target.filters):
            target.addFilter(_MaskCookies())


_mask_cookies_in_httpcore_logs()


def json_object(response: httpx.Response, where: str) -> dict[str, Any]:
    """The answer's JSON object; anything else is a ``StoreError`` naming ``where``."""
    # The error is raised outside the handler: a JSONDecodeError holds the whole answer
    # (``doc``), which may be a value or a token, and must not ride along as its context.
    try:
        data = response.json()
    except ValueError:
        data = _NOT_JSON
    if data is _NOT_JSON:
        raise StoreError(f"{where}: the answer is not JSON")
    if not isinstance(data, dict):
        raise StoreError(f"{where}: the answer is not a JSON object")
    return data


async def read_capped(
    client: httpx.AsyncClient, request: httpx.Request, where: str, limit: int = MAX_BODY_BYTES
) -> httpx.Response:
    """Send ``request`` and read its answer, refusing one over ``limit`` bytes (decoded) as it
    streams in: a server answering an endless or huge body costs at most ``limit`` of memory."""
    import httpx

    response = await client.send(request, stream=True)
    chunks = response.aiter_bytes()
    try:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(where, limit)
        body = bytearray()
        async for chunk in chunks:
            body += chunk
            if len(body) > limit:
                raise _too_large(where, limit)
    finally:
        await response.aclose()
        # httpx reads through a stack of async generators; one left unfinished is finalized
        # by the garbage collector (trio warns). Closed, the stream ends or fails at once, and
        # running it out finalizes every layer.
        with contextlib.suppress(Exception):
            async for _ in chunks:
                pass
    headers = httpx.Headers(
        [
            (key, value)
            for key, value in response.headers.multi_items()
            if key.lower() not in {"content-encoding", "content-length", "transfer-encoding"}
        ]
    )
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=bytes(body),
        request=request,
        extensions=response.extensions,
    )


async def send_logged(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    where: str,
    event: str,
    host: str,
    path: str,
    started: float,
) -> httpx.Response:
    """``read_capped``, with one debug ``event`` per request (status or error, duration; never
    a body or a header) and httpx's failures as ours: a transport failure is
    ``StoreUnavailableError`` (retried), any other ``StoreError``, both saying ``where``."""
    import httpx

    try:
        response = await read_capped(client, request, where)
    except httpx.TransportError as exc:
        logger.debug(
            event,
            host=host,
            method=request.method,
            path=path,
            error=type(exc).__name__,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        raise StoreUnavailableError(f"{where} failed: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise StoreError(f"{where} failed: {type(exc).__name__}") from exc
    logger.debug(
        event,
        host=host,
        method=request.method,
        path=path,
        status=response.status_code,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return response


def unavailable(text: str, response: httpx.Response) -> StoreUnavailableError:
    """The ``StoreUnavailableError`` for a transient status (``TRANSIENT_STATUSES``).

    Throttled (the server said slow down) for 429, and for 503 with a ``Retry-After``; the
    server's hint in ``retry_after`` either way.
    """
    hint = retry_after(response.headers.get("Retry-After"))
    status = response.status_code
    throttled = status in THROTTLING_STATUSES or (
        status == 503 and response.headers.get("Retry-After") is not None  # noqa: PLR2004
    )
    return StoreUnavailableError(text, retry_after=hint, throttled=throttled)


def _too_large(where: str, limit: int) -> StoreError:
    return StoreError(f"{where}: the answer is larger than {limit // (1024 * 1024)} MiB; refused")


def is_loopback(host: str) -> bool:
    """``host`` (a name or an IP address, IPv6 in brackets or not) is this machine."""
    bare = host.strip("[]").lower()
    if bare in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def http_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header (whole seconds, a lower bound of the server's time), or ``None``."""
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed
