"""Streamable HTTP under uvicorn with admission control, so a flood costs answers, never the process.

The SDK's ``run_streamable_http_async`` starts uvicorn with no connection limit and no deadline
for a request's headers: ~1,100 idle connections under ``ulimit -n 1024`` exhausted the
descriptors, the event loop's "accept failed" report went through a log handler that itself
needed a descriptor (Rich imports a module on first use), and the failure ended the loop.
:func:`run_http` runs the same Starlette app with:

- a **connection cap** below the descriptor limit: a connection beyond it is closed as soon as it
  is accepted (its descriptor is back at once), so files, sockets to Redis and the disk tier
  always have descriptors left;
- a **header deadline**: a connection that has not sent a complete request head within
  ``header_timeout_s`` (a slow-loris client, or an idle one) is closed; ``keep_alive_s`` closes
  idle connections between requests;
- **uvicorn's ``limit_concurrency``**: requests beyond it are answered ``503`` at once;
- **a bound on POST requests in progress** (``max_active_posts``): one more is answered ``503``
  before the MCP SDK allocates anything for it, so a burst's peak (and what the allocator keeps
  of it) is bounded;
- **log handlers that cannot raise**: a handler failing (for want of a descriptor, a closed
  stream) is reported on stderr by the logging module and the server goes on;
- **nothing of an answered request kept**: an idle keep-alive connection drops its last request
  (uvicorn keeps its scope, with the user and token, until the next one), and the timers a
  response arms run outside the request's context; a few thousand such survivors of a burst
  pinned the allocator's arenas (+31 % RSS after 10,000 calls, +18 % without them);
- **memory given back after a burst**: once requests have been served and none is in progress,
  glibc's ``malloc_trim`` returns the freed heap pages to the system (after a 10,000-call burst it
  gave back about 19 MB that glibc otherwise kept; docs/reliability.md has the numbers).

Tool calls are bounded separately, per server (``SessionPolicy.max_concurrent_calls``), with a fast
"busy" tool error.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import prehydrate as ph

__all__ = ["HttpLimits", "run_http"]

logger = logging.getLogger("prehydrate.mcp_server")

_RESERVED_FDS = 64
"""Descriptors kept free of client connections: files being read, Redis, the disk tier, logs."""


def _raise_fd_limit() -> int:
    """Raise the soft descriptor limit to the hard one (what servers usually do); returns the soft limit."""
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_NOFILE; the OS and the connection cap still apply
        return 8192
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpLimits:
    """Admission control of the HTTP transport."""

    max_connections: int | None = None
    """Open client connections at most; ``None``: the descriptor limit minus a reserve, at most 4096."""
    max_requests: int | None = None
    """uvicorn's ``limit_concurrency``: beyond this many connections or requests in progress, a
    request is answered ``503``; ``None``: the connection cap."""
    max_active_posts: int | None = 256
    """``POST`` requests (tool calls and other messages) handled at once; one more is answered
    ``503`` with ``Retry-After: 1`` before it reaches the MCP SDK; ``None``: no bound. What the
    allocator keeps after a burst grows with the requests in flight: 10,000 calls over 1,000
    connections left +55-64 % RSS without the bound, +18 % with 256 (docs/reliability.md); 128
    keeps less and answers fewer. ``prehydrate serve --max-active-posts``. Long-lived ``GET``
    event streams do not count."""
    header_timeout_s: float = 20.0
    """Seconds a connection may take to send a complete request head (counted again after each response)."""
    keep_alive_s: float = 15.0
    """Seconds an idle keep-alive connection is kept between requests. uvicorn's 5 s left a race:
    a client reusing a connection just as the server closed it saw its call fail (``ReadError``),
    which a busy server (responses delivered seconds late) made frequent under load."""

    def __post_init__(self) -> None:
        if self.max_connections is not None and self.max_connections < 1:
            raise ph.ConfigError("HttpLimits.max_connections must be at least 1")
        if self.max_requests is not None and self.max_requests < 1:
            raise ph.ConfigError("HttpLimits.max_requests must be at least 1")
        if self.max_active_posts is not None and self.max_active_posts < 1:
            raise ph.ConfigError("HttpLimits.max_active_posts must be at least 1")
        if self.header_timeout_s <= 0 or self.keep_alive_s <= 0:
            raise ph.ConfigError("HttpLimits timeouts must be positive")

    def connections(self, fd_limit: int) -> int:
        """The connection cap for a process allowed ``fd_limit`` descriptors.

        The event loop accepts up to :func:`accept_batch` sockets at a time before any of them
        reaches the cap, so the cap leaves room for one batch besides the reserve.
        """
        if self.max_connections is not None:
            return self.max_connections
        return max(8, min(4096, fd_limit - _RESERVED_FDS - 2 * accept_batch(fd_limit)))


def accept_batch(fd_limit: int) -> int:
    """The listen backlog, which is also how many sockets asyncio accepts in one go."""
    return max(8, min(128, fd_limit // 16))


def _guarded_protocol(max_connections: int, header_timeout_s: float) -> type[Any]:
    """uvicorn's h11 protocol with a connection cap and a deadline for each request head."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        """The deadline of the request head awaited now (one per connection, re-armed after each response)."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.abort()  # over the cap: give the descriptor back now, send nothing
                return
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            # Called from inside the request's task: run in an empty context, so the timers armed
            # here (uvicorn's keep-alive, the head deadline) do not keep the request's context alive.
            contextvars.Context().run(self._response_complete)

        def _response_complete(self) -> None:
            finished = self.cycle
            super().on_response_complete()
            if self.cycle is finished:  # (not a pipelined request that started just now)
                # uvicorn keeps the last request until the next one: its cycle, scope and headers,
                # with the authenticated user and token. An idle keep-alive connection needs none.
                self.cycle = self.scope = self.headers = None  # type: ignore[assignment]  # uvicorn's own "no request" value
            self._arm_header_deadline()  # the next request's head gets the same deadline

        def _arm_header_deadline(self) -> None:
            # One deadline per connection: the one armed for an earlier head that has since arrived
            # is cancelled, so it cannot close a connection that just answered (a client about to
            # reuse it would see its request fail), and a busy connection does not pile up timers.
            # The empty context: the timer outlives the request whose response armed it and must
            # not keep that request's context (its token, its spans) alive.
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(header_timeout_s, self._header_deadline)

        def _header_deadline(self) -> None:
            # Still waiting for (the rest of) the request head: a slow or idle client. Close it.
            self._deadline = None
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

    return GuardedH11Protocol


_BUSY_BODY = b"the server is busy: too many requests are in progress; retry in a moment\n"


def _bound_posts(app: Any, limit: int) -> Any:
    """The ASGI ``app`` with at most ``limit`` POST requests inside it; one more gets ``503`` at once."""
    active = 0

    async def bounded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal active
        if scope["type"] != "http" or scope.get("method") != "POST":
            await app(scope, receive, send)  # lifespan, GET event streams, DELETE: not bounded here
            return
        if active >= limit:
            headers = [(b"content-type", b"text/plain"), (b"retry-after", b"1")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": _BUSY_BODY})
            return
        active += 1
        try:
            await app(scope, receive, send)
        finally:
            active -= 1

    return bounded


class _SafeHandler(logging.Handler):
    """Wraps a log handler so that its failure is reported by ``handleError``, never raised.

    Rich's handler imports a module inside ``emit``; with no descriptor left, that raised into the
    event loop's exception handler, which logged again, and the loop died.
    """

    def __init__(self, inner: logging.Handler) -> None:
        super().__init__(inner.level)
        self.inner = inner

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.inner.handle(record)
        except Exception:  # the one place a logging failure is allowed to stop: here
            try:
                os.write(2, ph.utf8(f"prehydrate: a log handler failed: {record.getMessage()[:300]}\n"))
            except Exception:  # noqa: S110  (stderr itself is gone: nothing left to tell)
                pass


def _guard_log_handlers() -> dict[str, list[logging.Handler]]:
    """Wrap every handler of the root logger and of the loggers the server logs through.

    Returns the handlers as they were, for :func:`run_http` to put back when it returns (an
    application embedding the server keeps its own logging as it configured it).
    """
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "asyncio", "mcp", "prehydrate")
    before: dict[str, list[logging.Handler]] = {}
    for name in names:
        log = logging.getLogger(name)
        before[name] = list(log.handlers)
        log.handlers = [h if isinstance(h, _SafeHandler) else _SafeHandler(h) for h in log.handlers]
    return before


_TRIM_EVERY_S = 5.0
"""How often the server looks for a quiet moment after requests to give freed memory back."""


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim  # the C library this process runs on
    except (OSError, AttributeError):
        return None
    return trim


async def _trim_when_quiet(state: Any, trim: Callable[[int], int], every_s: float = _TRIM_EVERY_S) -> None:
    """Return freed heap memory to the system whenever requests were served and none is in progress.

    ``state`` is uvicorn's ``ServerState`` (``total_requests``, ``tasks`` in progress). glibc keeps
    the pages that a burst's request and response buffers freed; only ``malloc_trim`` hands them
    back. It runs in a worker thread, once per quiet period, so a steady load pays nothing.
    """
    served = state.total_requests
    while True:
        await asyncio.sleep(every_s)
        if state.total_requests != served and not state.tasks:
            served = state.total_requests
            await asyncio.to_thread(trim, 0)


def _loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's default report, made unable to raise (the loop must outlive any report)."""
    try:
        loop.default_exception_handler(context)
    except Exception:
        try:
            os.write(2, ph.utf8(f"prehydrate: event loop error: {context.get('message', '')[:300]}\n"))
        except Exception:  # noqa: S110
            pass


def _server_class(on_listening: Callable[[], object] | None) -> type[Any]:
    """uvicorn's ``Server``, calling ``on_listening`` once its sockets accept connections."""
    import uvicorn

    class ListeningServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and on_listening is not None:
                on_listening()

    return ListeningServer


async def run_http(
    server: Any,
    *,
    host: str,
    port: int,
    limits: HttpLimits | None = None,
    on_listening: Callable[[], object] | None = None,
) -> None:
    """Serve ``server`` (an ``MCPServer``) over streamable HTTP until uvicorn stops (SIGINT/SIGTERM).

    Args:
        server: made by :func:`~prehydrate.mcp_server.create_server`.
        host: bind address.
        port: TCP port.
        limits: admission control (defaults to ``HttpLimits()``).
        on_listening: called once the port accepts connections (``prehydrate serve`` starts the
            engine's warm-up there, so that nothing but the imports stands before the port).
    """
    import uvicorn

    limits = limits if limits is not None else HttpLimits()
    fd_limit = _raise_fd_limit()
    cap = limits.connections(fd_limit)
    app = server.streamable_http_app(host=host)
    if limits.max_active_posts is not None:
        app = _bound_posts(app, limits.max_active_posts)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=server.settings.log_level.lower(),
        http=_guarded_protocol(cap, limits.header_timeout_s),
        ws="none",  # streamable HTTP has no WebSocket route; "auto" would import a WebSocket library
        limit_concurrency=limits.max_requests or cap,
        timeout_keep_alive=int(max(1, limits.keep_alive_s)),
        backlog=accept_batch(fd_limit),
    )
    loop = asyncio.get_running_loop()
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(_loop_exception_handler)
    userver = _server_class(on_listening)(config)
    config.load()  # configures uvicorn's loggers now, so the guard below wraps them too
    handlers = _guard_log_handlers()
    logger.info("HTTP admission: %d connections, %d requests in progress at most", cap, config.limit_concurrency)
    trim = _malloc_trim()
    trimmer = asyncio.create_task(_trim_when_quiet(userver.server_state, trim)) if trim is not None else None
    try:
        await userver.serve()
    finally:  # also when cancelled (an embedding application stops us)
        if trimmer is not None:
            trimmer.cancel()
            await asyncio.gather(trimmer, return_exceptions=True)
        for listener in userver.servers:
            listener.close()
        for name, kept in handlers.items():
            logging.getLogger(name).handlers = kept
        loop.set_exception_handler(previous_handler)
