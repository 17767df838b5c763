"""A loopback TCP proxy that adds network latency and injects faults, for tests and benchmarks.

``FaultProxy`` listens on 127.0.0.1 and forwards every connection to one loopback target. It
models a link with a fixed one-way delay of ``latency_ms / 2`` in each direction: every chunk
read on one side is written to the other side ``latency_ms / 2`` after it arrived (chunks keep
their order and are pipelined, as on a real link), so an HTTP request and its answer cost one
round trip of ``latency_ms``. With ``handshake=True`` (the default) the first request of each
new connection waits one more round trip, as a TCP handshake would: opening a connection is
not free on a real network.

Faults are decided per HTTP request (a client chunk that starts with an HTTP method), from a
queue of ``Fault`` values (``proxy.inject(Fault.RESET, count=2)``), else ``default_fault``:

- ``DROP``: close the client's connection without forwarding the request.
- ``RESET``: forward the request, let ``reset_after_bytes`` bytes of the answer through, then
  reset the connection (RST).
- ``STALL``: forward nothing more on this connection, in either direction, until the client
  closes it.
- ``HTTP_408``, ``HTTP_429``, ``HTTP_500``, ``HTTP_502``, ``HTTP_503``, ``HTTP_504``: answer
  the request with that status (one round trip later) instead of forwarding it, with a small
  JSON body and, for 429 and 503, ``Retry-After: <retry_after>`` when ``retry_after`` is set.
  A 429 keeps the connection open, as a real server or front end does (the request's body is
  skipped, the next request is forwarded as usual); the others say ``Connection: close`` and
  close the connection once the client has read the answer.

A quota (``proxy.limit(rate, burst)``, or per AWS operation ``proxy.limit(rate, operation=
"ListSecrets")``, read from the ``X-Amz-Target`` header) is a token bucket: a request beyond it
is answered ``HTTP_429`` (with ``retry_after``, as a rate-limited server would), counted in
``faults_applied`` like an injected one.

Counters (``connections``, ``requests``, ``bytes_up``, ``bytes_down``) tell how much went
through (``requests`` counts those the proxy answered itself too); ``answered`` counts the
target's answers (requests that reached it), ``answered_errors`` those with a status of 400+;
``faults_applied`` counts each fault applied; ``open_connections`` is how many client
connections are open now and ``max_open_connections`` the most open at once (a connection
counts as closed as soon as the proxy closes it or sees the client close it).
Targets must be loopback addresses: this proxy never reaches another host.

Use it in-process on its own thread (``with ProxyThread("127.0.0.1", port, latency_ms=50) as
proxy: ... proxy.port``), from async code (``await tg.start(proxy.serve)``), or as a process::

    python tests/fault_proxy.py --target 127.0.0.1:8080 --latency-ms 50 --port 0

which prints ``PORT <n>`` once listening, then a ``STATS ...`` line whenever it reads a line on
its standard input, and exits when its standard input closes.
"""

from __future__ import annotations

import argparse
import collections
import enum
import ipaddress
import json
import math
import socket
import struct
import sys
import time
from contextlib import ExitStack
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.from_thread
import anyio.streams.memory

_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"PATCH ", b"HEAD ", b"OPTIONS ", b"LIST ")
_CHUNK = 65536


class Fault(enum.Enum):
    """What happens to one HTTP request."""

    NONE = "none"
    DROP = "drop"
    RESET = "reset"
    STALL = "stall"
    HTTP_403 = "403"
    HTTP_408 = "408"
    HTTP_429 = "429"
    HTTP_500 = "500"
    HTTP_502 = "502"
    HTTP_503 = "503"
    HTTP_504 = "504"

    @property
    def status(self) -> int | None:
        """The HTTP status this fault answers with, if it answers instead of forwarding."""
        return int(self.value) if self.value.isdigit() else None


_REASONS = {
    403: "Forbidden",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _operation(chunk: bytes) -> str:
    """The AWS operation of a request (``X-Amz-Target: secretsmanager.ListSecrets``), or ""."""
    for line in chunk.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-amz-target":
            return value.strip().decode("ascii", "replace").rsplit(".", 1)[-1]
    return ""


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the fault proxy only forwards to loopback addresses, not {host!r}")


class _Connection:
    """One proxied connection: its fault state, shared by both directions."""

    def __init__(self, proxy: FaultProxy, client: anyio.abc.SocketStream) -> None:
        self.proxy = proxy
        self.client = client
        self.stalled = anyio.Event()
        self.reset_budget: int | None = None
        self.first_request = True
        self.answered = False
        #: Body bytes still to skip of a request the proxy answered itself on a kept connection.
        self.skip = 0
        self.open = True
        proxy.open_connections += 1
        proxy.max_open_connections = max(proxy.max_open_connections, proxy.open_connections)

    def closed(self) -> None:
        """The client's side is gone (closed by either end); counted once."""
        if self.open:
            self.open = False
            self.proxy.open_connections -= 1


class FaultProxy:
    """Forwards loopback TCP connections to ``target_host:target_port`` with latency/faults."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        latency_ms: float = 0.0,
        handshake: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        reset_after_bytes: int = 64,
    ) -> None:
        _check_loopback(target_host)
        _check_loopback(host)
        self.target_host = target_host
        self.target_port = target_port
        self.latency_ms = latency_ms
        self.handshake = handshake
        self.host = host
        self.port = port
        self.reset_after_bytes = reset_after_bytes
        #: The ``Retry-After`` header value of HTTP_429 and HTTP_503 answers (None: no header).
        self.retry_after: str | None = None
        self.default_fault = Fault.NONE
        self.faults_applied: collections.Counter[Fault] = collections.Counter()
        self.open_connections = 0
        self.max_open_connections = 0
        self._faults: collections.deque[Fault] = collections.deque()
        self.connections = 0
        self.requests = 0
        self.bytes_up = 0
        self.bytes_down = 0
        #: Answers from the target (requests that reached it and came back), and those of
        #: them with a status of 400 or more.
        self.answered = 0
        self.answered_errors = 0
        self._buckets: dict[str, _Bucket] = {}

    # -- control -------------------------------------------------------------------------

    def inject(self, fault: Fault, count: int = 1) -> None:
        """Apply ``fault`` to the next ``count`` requests (after any already queued)."""
        self._faults.extend([fault] * count)

    def limit(self, rate: float, burst: float | None = None, *, operation: str = "") -> None:
        """At most ``rate`` requests per second (bursts of ``burst``, default ``rate``), for
        every request or only one AWS ``operation``; beyond it, 429."""
        self._buckets[operation] = _Bucket(rate, burst if burst is not None else rate)

    def reset_counters(self) -> None:
        self.connections = self.requests = self.bytes_up = self.bytes_down = 0
        self.answered = self.answered_errors = 0
        self.faults_applied.clear()
        self.max_open_connections = self.open_connections

    def stats(self) -> dict[str, int]:
        return {
            "throttled": self.faults_applied[Fault.HTTP_429],
            "connections": self.connections,
            "requests": self.requests,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "answered": self.answered,
            "answered_errors": self.answered_errors,
        }

    def _next_fault(self, chunk: bytes = b"") -> Fault:
        fault = self._faults.popleft() if self._faults else self.default_fault
        if fault is Fault.NONE and self._buckets:
            bucket = self._buckets.get(_operation(chunk)) or self._buckets.get("")
            if bucket is not None and not bucket.take():
                fault = Fault.HTTP_429
        if fault is not Fault.NONE:
            self.faults_applied[fault] += 1
        return fault

    def _answer(self, status: int, *, close: bool = True) -> bytes:
        body = json.dumps({"detail": [_REASONS[status].replace(" ", ""), "fault proxy"]}).encode()
        headers = [
            f"HTTP/1.1 {status} {_REASONS[status]}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
        ]
        if close:
            headers.append("Connection: close")
        if status in {429, 503} and self.retry_after is not None:
            headers.append(f"Retry-After: {self.retry_after}")
        return ("\r\n".join(headers) + "\r\n\r\n").encode() + body

    def _count_answer(self, chunk: bytes) -> None:
        """Count an answer of the target (a chunk that starts one)."""
        if chunk.startswith(b"HTTP/"):
            self.answered += 1
            status = chunk[9:12]
            self.answered_errors += status.isdigit() and int(status) >= 400

    @property
    def _one_way(self) -> float:
        return self.latency_ms / 2000.0

    # -- serving -------------------------------------------------------------------------

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and forward until cancelled; reports the listening port to ``task_status``."""
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        async with listener:
            self.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))  # noqa: S610
            task_status.started(self.port)
            await listener.serve(self._handle)

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        self.connections += 1
        conn = _Connection(self, client)
        try:
            try:
                upstream = await anyio.connect_tcp(self.target_host, self.target_port)
            except OSError:
                await client.aclose()
                return
            async with client, upstream, anyio.create_task_group() as tg:
                tg.start_soon(self._pipe, conn, client, upstream, True, tg.cancel_scope)  # noqa: FBT003
                tg.start_soon(self._pipe, conn, upstream, client, False, tg.cancel_scope)  # noqa: FBT003
        finally:
            conn.closed()

    async def _pipe(
        self,
        conn: _Connection,
        source: anyio.abc.SocketStream,
        sink: anyio.abc.SocketStream,
        upward: bool,
        scope: anyio.CancelScope,
    ) -> None:
        """Reads ``source`` and writes each chunk to ``sink`` one one-way delay later."""
        send, receive = anyio.create_memory_object_stream[tuple[float, bytes | None]](math.inf)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._deliver, conn, receive, sink, upward, scope)
            async with send:
                while True:
                    try:
                        chunk = await source.receive(_CHUNK)
                    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                        if upward:
                            conn.closed()
                            if conn.stalled.is_set() or conn.answered:
                                scope.cancel()  # nothing more will go through: end it now
                                return
                        _queue(send, (time.monotonic() + self._one_way, None))
                        break
                    if upward and conn.answered:
                        continue  # the rest of a request answered by the proxy itself
                    if upward and conn.skip:
                        # The body of a request answered in place on a kept connection.
                        skipped = min(conn.skip, len(chunk))
                        conn.skip -= skipped
                        chunk = chunk[skipped:]
                        if not chunk:
                            continue
                    delay = self._one_way
                    if upward and chunk.startswith(_METHODS):
                        self.requests += 1
                        if conn.first_request and self.handshake:
                            delay += 2 * self._one_way
                        conn.first_request = False
                        fault = self._next_fault(chunk)
                        if fault is Fault.DROP:
                            conn.closed()
                            scope.cancel()
                            return
                        if fault.status is not None:
                            # Answer in place of the server. A 429 keeps the connection (the
                            # rest of this request's body is skipped); any other answer then
                            # waits for the client to close (closing first could reset the
                            # answer away).
                            keep = fault is Fault.HTTP_429
                            if keep:
                                conn.skip = max(0, _body_length(chunk) - len(_body(chunk)))
                            else:
                                conn.answered = True
                            await anyio.sleep(delay + self._one_way)
                            if not await _send(source, self._answer(fault.status, close=not keep)):
                                conn.closed()
                                scope.cancel()
                                return
                            continue
                        if fault is Fault.STALL:
                            conn.stalled.set()
                        elif fault is Fault.RESET:
                            conn.reset_budget = self.reset_after_bytes
                    if not _queue(send, (time.monotonic() + delay, chunk)):
                        return  # the other side is already gone (a reset, a failed send)

    async def _deliver(
        self,
        conn: _Connection,
        receive: anyio.streams.memory.MemoryObjectReceiveStream[tuple[float, bytes | None]],
        sink: anyio.abc.SocketStream,
        upward: bool,
        scope: anyio.CancelScope,
    ) -> None:
        async with receive:
            async for due, received in receive:
                chunk = received
                wait = due - time.monotonic()
                if wait > 0:
                    await anyio.sleep(wait)
                if conn.stalled.is_set():
                    await anyio.sleep_forever()
                if chunk is None:
                    try:
                        await sink.send_eof()
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        scope.cancel()
                    return
                if not upward and conn.reset_budget is not None:
                    chunk = chunk[: conn.reset_budget]
                    conn.reset_budget -= len(chunk)
                    if conn.reset_budget <= 0:
                        await _send(sink, chunk)
                        _abort(conn.client)
                        conn.closed()
                        scope.cancel()
                        return
                if upward:
                    self.bytes_up += len(chunk)
                else:
                    self.bytes_down += len(chunk)
                    self._count_answer(chunk)
                if not await _send(sink, chunk):
                    scope.cancel()
                    return


def _body(chunk: bytes) -> bytes:
    """The part of a request chunk after its header block (empty when not in this chunk)."""
    _, found, body = chunk.partition(b"\r\n\r\n")
    return body if found else b""


def _body_length(chunk: bytes) -> int:
    """A request's ``Content-Length`` (0 when absent), from its first chunk."""
    head = chunk.partition(b"\r\n\r\n")[0]
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return 0
    return 0


def _queue(
    send: anyio.streams.memory.MemoryObjectSendStream[tuple[float, bytes | None]],
    item: tuple[float, bytes | None],
) -> bool:
    """Hand a chunk to the delivering task; False once it has stopped."""
    try:
        send.send_nowait(item)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        return False
    return True


async def _send(sink: anyio.abc.SocketStream, chunk: bytes) -> bool:
    try:
        await sink.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        return False
    except RuntimeError:  # asyncio: a write after the peer's end of input; the connection is over
        return False
    return True


def _abort(stream: anyio.abc.SocketStream) -> None:
    """Make the coming close send a TCP reset instead of an orderly FIN."""
    raw: socket.socket = stream.extra(anyio.abc.SocketAttribute.raw_socket)  # noqa: S610
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class ProxyThread:
    """A ``FaultProxy`` served on its own thread and event loop (a context manager)."""

    def __init__(self, target_host: str, target_port: int, **options: Any) -> None:
        self.proxy = FaultProxy(target_host, target_port, **options)
        self._stack = ExitStack()

    def __enter__(self) -> FaultProxy:
        portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        future, _ = portal.start_task(self.proxy.serve)
        self._stack.callback(future.cancel)
        return self.proxy

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT on loopback")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="round-trip delay")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--no-handshake", action="store_true", help="new connections are free")
    parser.add_argument(
        "--quota",
        action="append",
        default=[],
        metavar="[OPERATION=]RATE",
        help="requests per second (of one AWS operation), beyond: 429",
    )
    parser.add_argument("--retry-after", default=None, help="Retry-After of 429/503 answers")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    proxy = FaultProxy(
        host, int(port), latency_ms=args.latency_ms, port=args.port, handshake=not args.no_handshake
    )
    proxy.retry_after = args.retry_after
    for quota in args.quota:
        operation, _, rate = quota.rpartition("=")
        proxy.limit(float(rate), operation=operation)

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            listening = await tg.start(proxy.serve)
            print(f"PORT {listening}", flush=True)
            # Each line on stdin asks for the counters; end of input stops the proxy.
            while True:
                line = await anyio.to_thread.run_sync(sys.stdin.readline)
                if not line:
                    break
                if line.strip() == "reset":
                    proxy.reset_counters()
                print("STATS " + json.dumps(proxy.stats()), flush=True)
            tg.cancel_scope.cancel()

    anyio.run(run)


if __name__ == "__main__":
    main()
