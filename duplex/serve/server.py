"""`duplex-serve`'s server: one process, one model host, many conversations over WebSocket.

The door does the refusing, so a refused client costs nothing: the token is checked in the HTTP
handshake (401 with a one-line body), `/health` is answered there too (JSON with the host's slot
usage; 503 while draining, so a load balancer stops sending new conversations), and a full host
closes the new connection with 1013 and a reason naming the cap. Each accepted connection is a
`Conversation` on its own lane of the host.

`drain()` (SIGTERM) stops listening at once, lets every conversation finish the model's turn,
closes them with 1001, and returns when the last one has ended.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import ssl
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from duplex.config import Config
from duplex.serve import protocol
from duplex.serve.conversation import Conversation, Limits, StepLatency
from duplex.serve.host import HostFull, ModelHost

_log = logging.getLogger("duplex.serve")

HEALTH_PATH = "/health"
CONVERSATION_PATH = "/"


@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port (see `DuplexServer.port`)
    token: str | None = None  # clients must send `Authorization: Bearer <token>`
    ssl: ssl.SSLContext | None = None
    limits: Limits = field(default_factory=Limits)
    name: str = "duplex-serve"


@dataclass(slots=True)
class Counters:
    accepted: int = 0
    refused_full: int = 0
    refused_token: int = 0
    closed_bad_input: int = 0


class DuplexServer:
    """`async with DuplexServer(host=..., config=..., options=...) as server:` listens until left or drained."""

    def __init__(self, *, host: ModelHost, config: Config, options: ServeOptions | None = None) -> None:
        self.host = host
        self.config = config
        self.options = options or ServeOptions()
        self.latency = StepLatency()
        self.counters = Counters()
        self.draining = asyncio.Event()
        self.active: set[Conversation] = set()
        self._server: Server | None = None
        self._started = time.monotonic()
        self._names = 0

    @property
    def port(self) -> int:
        """The port actually listened on (the one chosen by the system for port 0)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> Self:
        self._server = await serve(
            self._handle, self.options.host, self.options.port, ssl=self.options.ssl,
            process_request=self._door, subprotocols=[protocol.SUBPROTOCOL],  # type: ignore[list-item]
            max_size=protocol.MAX_MESSAGE_BYTES, compression=None, server_header=self.options.name)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._server is not None
        self.draining.set()
        self._server.close(close_connections=True, code=protocol.GOING_AWAY, reason="server stopped")
        await self._server.wait_closed()
        self.host.shutdown()

    def stop_accepting(self) -> None:
        """Stop listening now (new connections are refused) and tell every conversation to end after its turn."""
        assert self._server is not None
        self.draining.set()
        self._server.server.close()

    async def drain(self) -> None:
        """Stop taking conversations; let each finish the model's turn and close; return when all are gone."""
        assert self._server is not None
        self.stop_accepting()
        _log.info("draining: %d conversations finish their turn", len(self.active))
        self._server.close(close_connections=False)  # handshakes in progress get 503
        await self._server.wait_closed()

    def health(self) -> dict[str, Any]:
        return {"status": "draining" if self.draining.is_set() else "ok", "server": self.options.name,
                "backbone": self.config.backbone, "host": type(self.host).__name__, **self.host.usage(),
                "conversations": len(self.active), "uptime_s": round(time.monotonic() - self._started, 1),
                **vars_of(self.counters), **self.latency.figures()}  # after the host's figures: ours win a clash

    # ---- the door (HTTP handshake) ------------------------------------------------------------

    def _door(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?")[0] == HEALTH_PATH:
            return _json(connection, 503 if self.draining.is_set() else 200, self.health())
        if request.path != CONVERSATION_PATH:
            return connection.respond(404, f"no such path {request.path[:64]!r}: conversations are on "
                                           f"{CONVERSATION_PATH}, health on {HEALTH_PATH}\n")
        if self.options.token is not None and not _token_ok(request.headers, self.options.token):
            self.counters.refused_token += 1
            return connection.respond(401, "missing or unknown token: send 'Authorization: Bearer <token>' "
                                           "(the server's --token-file)\n")
        return None

    # ---- one connection -----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        if self.draining.is_set():
            await ws.close(protocol.GOING_AWAY, "server shutting down: connect to another")
            return
        try:
            lane = await asyncio.to_thread(self.host.open)  # a copied or loaded model: not on the loop
        except HostFull as exc:
            self.counters.refused_full += 1
            await ws.close(protocol.TRY_AGAIN, protocol.close_reason(
                f"server full: {exc} (--max-sessions {self.host.capacity}); try again later"))
            return
        except Exception as exc:  # the host could not make a lane: this conversation fails, the server stays
            _log.error("no lane for a new conversation", exc_info=exc)
            await ws.close(protocol.SERVER_ERROR, protocol.close_reason(
                f"the server could not start a conversation ({type(exc).__name__}); see its log"))
            return
        self._names += 1
        name = f"conversation-{self._names}"
        try:
            conversation = Conversation(ws=ws, lane=lane, config=self.config, limits=self.options.limits,
                                        latency=self.latency, draining=self.draining, name=name,
                                        hello=protocol.hello(backbone=self.config.backbone, server=self.options.name))
            self.counters.accepted += 1
            self.active.add(conversation)
            try:
                code, reason = await conversation.run()
            finally:
                self.active.discard(conversation)
        finally:
            self.host.close(lane)
        if code in (protocol.BAD_FRAME, protocol.BAD_TEXT, protocol.TOO_FAST, protocol.SLOW_READER, protocol.IDLE):
            self.counters.closed_bad_input += 1
        _log.info("%s from %s closed: %d %s", name, ws.remote_address, code, reason)
        await ws.close(code, reason)


def vars_of(counters: Counters) -> dict[str, int]:
    return {name: getattr(counters, name) for name in counters.__slots__}  # type: ignore[attr-defined]


def _token_ok(headers: Headers, token: str) -> bool:
    given = headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def _json(connection: ServerConnection, status: int, body: dict[str, Any]) -> Response:
    response = connection.respond(status, json.dumps(body, separators=(",", ":")) + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response
