"""Every MCP call that reaches prehydrate is observed once, on the span the SDK opened for it.

The MCP SDK's ``OpenTelemetryMiddleware`` opens a SERVER span per message (``tools/call
request_context``, ``resources/read``); by the GenAI and MCP conventions the ``tools/call`` span
*is* the tool-execution span. Two small middlewares make that usable without touching the SDK's
private state:

- the first runs *before* the SDK's (it is put at the head of ``server.middleware``) and notes the
  span current when the message arrived;
- the second runs *inside* it (appended, so after the SDK's built-ins). If the current span there
  is recording and is not the one noted, the SDK (or another middleware) opened a span for this
  message: it is declared with :func:`prehydrate.tracing.host_span`, so the instrumentation
  records on it instead of opening a second ``execute_tool`` span. With the SDK's tracing off
  nothing is declared and the instrumentation opens its own span, as with the raw engine API.

The inner middleware also makes sure that calls refused *before* the engine (arguments the SDK's
validation or the tool itself rejects, a malformed ``_meta`` session id, a bad resource URI) are
seen: when a ``request_context`` call or a section read ends in an error and the engine emitted
no event for it, it emits :class:`~prehydrate.LookupFailed` on the engine's bus, so the error
gets its span status, ``error.type`` and metric like any other failed call.

``prehydrate.tracing`` depends on ``opentelemetry-api`` only, which the MCP SDK depends on too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, Literal

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult
from opentelemetry import trace

import prehydrate as ph
from prehydrate.mcp_server._sessions import SessionKey, SessionManager
from prehydrate.tracing import host_span

__all__ = ["CallTelemetry"]

TOOL: Final = "request_context"
SECTION_URI_PREFIX: Final = "prehydrate://sections/"

Operation = Literal["request_context", "read_resource"]
Outcome = Literal["hit", "inflight", "miss"]


@dataclass(slots=True)
class _Call:
    """One observed call; ``reported`` turns true when the engine emitted its event."""

    operation: Operation
    start_ns: int
    reported: bool = False


_OUTER_SPAN: ContextVar[int] = ContextVar("prehydrate_mcp_outer_span", default=0)
"""The span id current when the message arrived, before the SDK's middleware (0: none)."""
_CALL: ContextVar[_Call | None] = ContextVar("prehydrate_mcp_call", default=None)


def _operation(ctx: ServerRequestContext[Any, Any]) -> Operation | None:
    params = ctx.params or {}
    if ctx.method == "tools/call" and params.get("name") == TOOL:
        return "request_context"
    if ctx.method == "resources/read" and str(params.get("uri", "")).startswith(SECTION_URI_PREFIX):
        return "read_resource"
    return None


def _is_error(result: HandlerResult) -> bool:
    """A tool result that reaches the wire as an error (the model, or its serialised form)."""
    if isinstance(result, CallToolResult):
        return result.is_error is True
    return isinstance(result, dict) and result.get("isError") is True


def _error_type(exc: BaseException) -> str:
    """prehydrate's error class behind a front-end exception, else the exception's own class."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ph.PrehydrateError):
            return type(cur).__name__
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return type(exc).__name__


class CallTelemetry:
    """Installs the two middlewares and the event hook on one server (see the module docstring)."""

    def __init__(
        self,
        server: MCPServer[Any],
        engine: ph.Engine,
        sessions: SessionManager,
        identify: Callable[[ServerRequestContext[Any, Any]], SessionKey],
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.identify = identify
        server.middleware.insert(0, self._before_sdk)
        server.middleware.append(self._inside_sdk)
        engine.subscribe(self._on_event)

    # -- middlewares ---------------------------------------------------------------------------------

    async def _before_sdk(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        token = _OUTER_SPAN.set(trace.get_current_span().get_span_context().span_id)
        try:
            return await call_next(ctx)
        finally:
            _OUTER_SPAN.reset(token)

    async def _inside_sdk(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        operation = _operation(ctx)
        if operation is None:
            return await call_next(ctx)
        call = _Call(operation=operation, start_ns=time.time_ns())
        token = _CALL.set(call)
        try:
            with self._host(ctx):
                try:
                    result = await call_next(ctx)
                except Exception as exc:
                    if not call.reported:
                        self._refused(ctx, call, _error_type(exc), str(exc))
                    raise
                if not call.reported and _is_error(result):
                    self._refused(ctx, call, "InputError", "the call was refused before reaching the engine")
                return result
        finally:
            _CALL.reset(token)

    @contextlib.contextmanager
    def _host(self, ctx: ServerRequestContext[Any, Any]) -> Iterator[None]:
        span = trace.get_current_span()
        span_id = span.get_span_context().span_id
        if span.is_recording() and span_id != 0 and span_id != _OUTER_SPAN.get():
            with host_span(span):
                yield
        else:
            yield

    # -- events --------------------------------------------------------------------------------------

    def _on_event(self, event: object) -> None:
        # Lookups are emitted synchronously in the calling task, so the current call is this one's.
        if isinstance(event, ph.Lookup | ph.LookupFailed):
            call = _CALL.get()
            if call is not None:
                call.reported = True

    def _turn_of(self, key: SessionKey | None) -> str:
        session = self.sessions.session(key) if key is not None else None
        turn = session.current if session is not None else None
        return turn.turn_id if turn is not None else ""

    def _refused(self, ctx: ServerRequestContext[Any, Any], call: _Call, error_type: str, message: str) -> None:
        """A call that failed before the engine saw it: report it like any failed lookup."""
        try:
            key: SessionKey | None = self.identify(ctx)
        except ph.PrehydrateError:  # the session id itself was the bad input
            key = None
        args = (ctx.params or {}).get("arguments") or {}
        section = args.get("section") if call.operation == "request_context" else None
        if call.operation == "read_resource":
            section = str((ctx.params or {}).get("uri", ""))[len(SECTION_URI_PREFIX) :]
        self.engine.events.emit(
            ph.LookupFailed(
                turn_id=self._turn_of(key),
                session=key.session_id if key is not None else "",
                tenant=key.tenant if key is not None else ph.Scope().tenant,
                section_id=section if isinstance(section, str) else None,
                query=None,
                error_type=error_type,
                message=message[:500],
                tool_call_id=None,
                start_ns=call.start_ns,
                end_ns=time.time_ns(),
                operation=call.operation,
            )
        )

    def read(
        self, key: SessionKey, section_id: str, entry: ph.CacheEntry, outcome: Outcome, tier: str | None, t0: float
    ) -> None:
        """Report a section read as a resource (the engine's ``lookup`` emits nothing itself).

        Args:
            key: the reader's session.
            section_id: the section read.
            entry: what the cache returned.
            outcome: hit, inflight or miss.
            tier: the tier that answered a hit.
            t0: ``time.perf_counter()`` when the read started.
        """
        call = _CALL.get()
        end_ns = time.time_ns()
        waited_ms = (time.perf_counter() - t0) * 1000.0
        self.engine.events.emit(
            ph.Lookup(
                turn_id=self._turn_of(key),
                session=key.session_id,
                tenant=key.tenant,
                section_id=section_id,
                outcome=outcome,
                waited_ms=waited_ms,
                bytes=entry.size_bytes,
                lead_ms=None,
                tier=tier,
                query=None,
                tool_call_id=None,
                node=None,
                start_ns=call.start_ns if call is not None else end_ns - int(waited_ms * 1e6),
                end_ns=end_ns,
                operation="read_resource",
            )
        )
