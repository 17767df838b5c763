"""An httpx transport that sends through a real one and keeps what went by.

Handed to a ``ZenMLStore`` or a ``VaultStore`` with ``transport=``, the public seam for watching
its requests.
"""

from __future__ import annotations

import httpx


class RecordingTransport(httpx.AsyncBaseTransport):
    """Every request sent, and the bearer token of every login answer (to forbid in output)."""

    def __init__(self, max_connections: int = 16) -> None:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._inner = httpx.AsyncHTTPTransport(limits=limits)
        self.sent: list[httpx.Request] = []
        self.tokens: list[str] = []
        self._watchers: list[list[httpx.Request]] = []

    def watch(self) -> list[httpx.Request]:
        """A list that receives every request sent from now on."""
        watcher: list[httpx.Request] = []
        self._watchers.append(watcher)
        return watcher

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        for watcher in self._watchers:
            watcher.append(request)
        response = await self._inner.handle_async_request(request)
        if request.url.path.endswith("/login") and response.status_code == httpx.codes.OK:
            await response.aread()
            token = response.json().get("access_token")
            if isinstance(token, str):
                self.tokens.append(token)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
