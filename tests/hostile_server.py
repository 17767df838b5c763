"""A loopback HTTP server that misbehaves on purpose, for tests of what a client bounds.

``HostileServer(mode)`` runs on its own thread and answers every request by ``mode``:

- ``"endless-pages"``: every ``GET`` is a ZenML page of one new secret claiming a billion pages.
- ``"endless-body"``: a ``200`` whose chunked JSON body never ends (megabytes as fast as the
  client reads them).
- ``"huge-length"``: a ``200`` that declares a 400 MiB ``Content-Length`` (and sends little).
- ``"drip"``: a ``200`` whose chunked body sends one byte every 0.2 s, for ever (no read
  timeout fires, only a deadline ends it).
- ``"truncated"``: a ``200`` whose JSON body stops in the middle; ``body`` holds its text.
  ``"truncated-login"``: the same, for the login answer too.
- ``"silent"``: reads the request and never answers (nor closes) until the server stops.
- ``"answer"``: answers ``status`` with ``headers`` and ``body`` (a 429 with ``Retry-After``,
  an AWS JSON error, ...).

``POST .../login`` always succeeds (a ZenML token answer), so the client gets to the fault;
``logins`` keeps each login request's form body (a test checks which credential was sent).
``requests`` counts the requests; ``body`` is the text of the truncated answer (a marker the
test looks for). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from types import TracebackType

from typing_extensions import Self

_LOGIN = json.dumps({"access_token": "tok", "token_type": "bearer"}).encode()


class HostileServer:
    def __init__(
        self,
        mode: str,
        *,
        body: str = "",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.mode = mode
        self.body = body
        self.status = status
        self.headers = dict(headers or {})
        self.requests = 0
        self.logins: list[bytes] = []
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        buffered = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffered:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                while len(buffered) < length:
                    buffered += conn.recv(65536)
                payload, buffered = buffered[:length], buffered[length:]
                self.requests += 1
                login = method == "POST" and target.split("?")[0].endswith("/login")
                if login:
                    self.logins.append(payload)
                if login and self.mode != "truncated-login":
                    self._send(conn, 200, _LOGIN)
                    continue
                self._fault(conn)
                if self.mode not in {"endless-pages", "answer"}:
                    return
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def _send(conn: socket.socket, status: int, payload: bytes, extra: str = "") -> None:
        conn.sendall(
            f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n{extra}\r\n".encode()
            + payload
        )

    def _fault(self, conn: socket.socket) -> None:
        chunked = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        chunked += "Transfer-Encoding: chunked\r\n\r\n"
        if self.mode == "endless-pages":
            n = self.requests
            item = {"id": f"00000000-0000-4000-8000-{n:012d}", "name": f"s{n}", "body": {}}
            page = {"index": n, "total_pages": 10**9, "total": 10**9, "items": [item]}
            self._send(conn, 200, json.dumps(page).encode())
        elif self.mode == "endless-body":
            conn.sendall(chunked.encode())
            piece = b'"' + b"x" * 1_048_574 + b'",'
            frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            conn.sendall(b"1\r\n[\r\n")
            while not self._stop.is_set():
                conn.sendall(frame)
        elif self.mode == "huge-length":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b'Content-Length: 419430400\r\n\r\n{"items": ['
            )
            time.sleep(1)
        elif self.mode == "drip":
            conn.sendall(chunked.encode())
            while not self._stop.is_set():
                conn.sendall(b"1\r\n \r\n")
                time.sleep(0.2)
        elif self.mode in {"truncated", "truncated-login"}:
            self._send(conn, 200, self.body.encode())
        elif self.mode == "silent":
            self._stop.wait()
        elif self.mode == "answer":
            extra = "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
            self._send(conn, self.status, self.body.encode(), extra)
        else:  # pragma: no cover - a test's typo
            raise ValueError(self.mode)
