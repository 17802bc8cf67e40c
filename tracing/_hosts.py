"""Where a call's telemetry goes: a span the host opened for it, or the span of a framework's run.

Two situations keep prehydrate from simply parenting on OpenTelemetry's current span:

- **A host already records the call.** The MCP SDK opens a ``tools/call request_context`` SERVER
  span for every tool call and gives it ``gen_ai.operation.name=execute_tool``: by the GenAI and
  MCP conventions that span *is* the tool-execution span. A second ``execute_tool`` span under it
  would double every per-tool count. The front end declares such a span with :func:`host_span`
  for the duration of the call, and the instrumentation records its attributes on it instead of
  opening a span of its own.
- **A framework traces without making its spans current.** LangChain tracers (OpenInference's
  ``LangChainInstrumentor``) follow runs through callbacks, so inside a LangGraph node
  OpenTelemetry's current span is whatever was current before the graph ran, often nothing.
  :func:`framework_parent` asks the tracer, through its public helper, for the span of the run
  in progress, so turns and lookups land in the graph's trace.

Both are read only when the instrumentation handles an event; they cost a dictionary lookup when
neither applies.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span

from prehydrate.tracing import attributes as A

__all__ = ["current_host_span", "framework_parent", "host_span"]

_HOST_SPAN: Final = context.create_key("prehydrate-host-span")

_OPENINFERENCE: Final = "openinference.instrumentation.langchain"


@contextmanager
def host_span(span: Span) -> Iterator[Span]:
    """Declare ``span`` as the span that records the call running in this block.

    Front ends call it when their host opened a span for the call (the MCP SDK's ``tools/call``
    or ``resources/read`` span): prehydrate's instrumentation then sets its attributes, links and
    errors on ``span`` instead of opening a child span. A span that is not recording is ignored,
    so prehydrate falls back to a span of its own (for example when only prehydrate has a tracer
    provider).

    Example:
        >>> from opentelemetry import trace
        >>> from prehydrate.tracing import host_span
        >>> with host_span(trace.get_current_span()):
        ...     pass  # await turn.request_context(...)
    """
    token = context.attach(context.set_value(_HOST_SPAN, span))
    try:
        yield span
    finally:
        context.detach(token)


def current_host_span(tool: bool) -> Span | None:
    """The span that already records the call in progress, if there is one.

    That is the span a front end declared with :func:`host_span`, or, for a tool call, a current
    span that is itself the ``execute_tool request_context`` span: one a host opened without
    declaring it (an MCP server of the application's own, an agent framework). Spans of the
    OpenTelemetry SDK expose the attributes they were started with; other spans are never taken
    for a host unless declared.

    Args:
        tool: the call is a ``request_context`` tool call (not a resource read).
    """
    span = context.get_value(_HOST_SPAN)
    if isinstance(span, Span) and span.is_recording():
        return span
    if tool:
        current = trace.get_current_span()
        attrs = getattr(current, "attributes", None)
        if (
            attrs is not None
            and attrs.get(A.GEN_AI_OPERATION_NAME) == A.OPERATION_EXECUTE_TOOL
            and attrs.get(A.GEN_AI_TOOL_NAME) == A.TOOL_NAME
            and current.is_recording()
        ):
            return current
    return None


def framework_parent() -> Context | None:
    """A context holding the span of the LangChain/LangGraph run in progress, when a tracer has one.

    Asks OpenInference's LangChain instrumentor (its public ``get_current_span``). The package is
    not imported here: it is asked only if the application already imported it.

    LangSmith's OpenTelemetry mode publishes no such helper: it exports its spans later, from a
    background thread, keeps the run-to-span map private, and starts the root span under whatever
    span was current when the run began. Under it, prehydrate's spans and LangSmith's share a trace
    when the application has a span current around the run (both parent on it).

    Returns:
        None when no such tracer is active or no run is in progress.
    """
    oi = sys.modules.get(_OPENINFERENCE)
    if oi is not None:
        span = _openinference_span(oi)
        if span is not None:
            return trace.set_span_in_context(span)
    return None


def _openinference_span(module: Any) -> Span | None:
    # LangChainInstrumentor is a singleton; asking an uninstrumented one prints a warning to
    # stdout (which belongs to the protocol under stdio), so look before asking.
    if not module.LangChainInstrumentor().is_instrumented_by_opentelemetry:
        return None
    span = module.get_current_span()
    return span if isinstance(span, Span) and span.get_span_context().is_valid else None
