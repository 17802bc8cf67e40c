"""Attribute keys, span names and metric names that prehydrate's telemetry uses.

Every key lives here so a dashboard, a test or an alert can import it instead of retyping a
string. GenAI and error keys follow the OpenTelemetry semantic conventions (the upstream constant
is named in each comment; semconv 0.66b2 marks the GenAI ones as moved to the GenAI conventions
repository, so we keep our own copies of the strings rather than import a deprecated module).
Everything prehydrate-specific is under the ``prehydrate.`` namespace: semconv has no cache
hit/miss attribute.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ERROR_TYPE",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_TOOL_TYPE",
    "MCP_RESOURCE_URI",
    "METRIC_HYDRATED",
    "METRIC_LOOKUPS",
    "METRIC_LOOKUP_WAIT",
    "METRIC_PREFETCHES",
    "METRIC_WASTED",
    "OPERATION_EXECUTE_TOOL",
    "PREHYDRATE_BYTES",
    "PREHYDRATE_CACHE_RESULT",
    "PREHYDRATE_CACHE_TIER",
    "PREHYDRATE_HYDRATION_KIND",
    "PREHYDRATE_NODE",
    "PREHYDRATE_OPERATION",
    "PREHYDRATE_PREFETCH_DURATION",
    "PREHYDRATE_PREFETCH_ID",
    "PREHYDRATE_PREFETCH_LEAD_TIME",
    "PREHYDRATE_PREFETCH_OUTCOME",
    "PREHYDRATE_PREFETCH_PROBABILITY",
    "PREHYDRATE_PREFETCH_REASON",
    "PREHYDRATE_PREFETCH_STATUS",
    "PREHYDRATE_QUERY",
    "PREHYDRATE_SECTION_ID",
    "PREHYDRATE_SESSION_ID",
    "PREHYDRATE_TASK_TYPE",
    "PREHYDRATE_TENANT",
    "PREHYDRATE_TURN_BYTES_PREFETCHED",
    "PREHYDRATE_TURN_BYTES_WASTED",
    "PREHYDRATE_TURN_CALLS",
    "PREHYDRATE_TURN_CANCELLED",
    "PREHYDRATE_TURN_CANDIDATES",
    "PREHYDRATE_TURN_COVERED_RATE",
    "PREHYDRATE_TURN_DURATION",
    "PREHYDRATE_TURN_ERRORS",
    "PREHYDRATE_TURN_FAILED",
    "PREHYDRATE_TURN_HITS",
    "PREHYDRATE_TURN_HIT_RATE",
    "PREHYDRATE_TURN_ID",
    "PREHYDRATE_TURN_INFLIGHT",
    "PREHYDRATE_TURN_MAX_INFLIGHT",
    "PREHYDRATE_TURN_MISSES",
    "PREHYDRATE_TURN_PREFETCHED",
    "PREHYDRATE_TURN_USED",
    "PREHYDRATE_TURN_WAIT_DURATION",
    "PREHYDRATE_TURN_WASTED",
    "PREHYDRATE_WAIT_DURATION",
    "SPAN_LOOKUP",
    "SPAN_PREFETCH",
    "SPAN_READ_RESOURCE",
    "SPAN_TURN",
    "TOOL_NAME",
]

# -- span names --------------------------------------------------------------------------------------

SPAN_LOOKUP: Final = "execute_tool request_context"
"""One ``request_context`` call (GenAI convention: ``{gen_ai.operation.name} {gen_ai.tool.name}``).

Opened only where no host records the call: under MCP the SDK's ``tools/call request_context``
span is the tool span, and prehydrate's attributes go on it instead."""
SPAN_READ_RESOURCE: Final = "read_resource prehydrate://sections"
"""One read of a section as an MCP resource, where no host span records it (under MCP with the
SDK's tracing on, its ``resources/read`` span carries the attributes)."""
SPAN_TURN: Final = "prehydrate turn"
"""One turn, from entering it to its bailout; carries the TurnReport."""
SPAN_PREFETCH: Final = "prehydrate prefetch"
"""One speculative hydration, from launch to its settlement at bailout."""

TOOL_NAME: Final = "request_context"
OPERATION_EXECUTE_TOOL: Final = "execute_tool"  # GenAiOperationNameValues.EXECUTE_TOOL

# -- semantic-convention keys -----------------------------------------------------------------------

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"  # gen_ai_attributes.GEN_AI_OPERATION_NAME
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"  # gen_ai_attributes.GEN_AI_TOOL_NAME
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"  # gen_ai_attributes.GEN_AI_TOOL_CALL_ID
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"  # gen_ai_attributes.GEN_AI_TOOL_TYPE ("function")
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"  # gen_ai_attributes.GEN_AI_CONVERSATION_ID (session)
ERROR_TYPE: Final = "error.type"  # error_attributes.ERROR_TYPE (stable)
MCP_RESOURCE_URI: Final = "mcp.resource.uri"  # mcp_attributes.MCP_RESOURCE_URI

# -- prehydrate keys: lookups -----------------------------------------------------------------------

PREHYDRATE_OPERATION: Final = "prehydrate.operation"
"""What was asked: ``request_context`` (the tool) or ``read_resource`` (a section read as a resource)."""
PREHYDRATE_CACHE_RESULT: Final = "prehydrate.cache.result"
"""``hit`` (served from the warm cache), ``inflight`` (joined a running prefetch) or ``miss``."""
PREHYDRATE_CACHE_TIER: Final = "prehydrate.cache.tier"
"""The cache tier that answered a hit (``memory``, ``disk``, ``redis``)."""
PREHYDRATE_SECTION_ID: Final = "prehydrate.section.id"
PREHYDRATE_WAIT_DURATION: Final = "prehydrate.wait.duration"
"""How long the caller waited for the content, in seconds (like every duration here and in the metrics)."""
PREHYDRATE_PREFETCH_LEAD_TIME: Final = "prehydrate.prefetch.lead_time"
"""For a hit on a prefetched entry: how long (seconds) before the request the prefetch had finished."""
PREHYDRATE_BYTES: Final = "prehydrate.bytes"
"""Content bytes served (lookup) or hydrated (prefetch)."""
PREHYDRATE_TENANT: Final = "prehydrate.tenant"
PREHYDRATE_SESSION_ID: Final = "prehydrate.session.id"
PREHYDRATE_TURN_ID: Final = "prehydrate.turn.id"
PREHYDRATE_NODE: Final = "prehydrate.node"
"""The workflow (LangGraph) node that made the call, when known."""
PREHYDRATE_QUERY: Final = "prehydrate.query"
"""Free-text query of a lookup or a turn; recorded only with ``instrument(record_queries=True)``."""
PREHYDRATE_TASK_TYPE: Final = "prehydrate.task.type"

# -- prehydrate keys: prefetches ---------------------------------------------------------------------

PREHYDRATE_PREFETCH_ID: Final = "prehydrate.prefetch.id"
PREHYDRATE_PREFETCH_OUTCOME: Final = "prehydrate.prefetch.outcome"
"""At bailout: ``used``, ``wasted``, ``cancelled``, ``failed`` (or ``warm``: already cached, nothing fetched)."""
PREHYDRATE_PREFETCH_STATUS: Final = "prehydrate.prefetch.status"
"""How the fetch itself ended: ``ok``, ``failed`` or ``cancelled``."""
PREHYDRATE_PREFETCH_PROBABILITY: Final = "prehydrate.prefetch.probability"
PREHYDRATE_PREFETCH_REASON: Final = "prehydrate.prefetch.reason"
PREHYDRATE_PREFETCH_DURATION: Final = "prehydrate.prefetch.duration"
"""How long the speculative hydration took, in seconds."""
PREHYDRATE_HYDRATION_KIND: Final = "prehydrate.hydration.kind"
"""Metric attribute of hydrated bytes: ``prefetch`` (speculative) or ``demand`` (a miss)."""

# -- prehydrate keys: turns (the TurnReport) --------------------------------------------------------

PREHYDRATE_TURN_CANDIDATES: Final = "prehydrate.turn.candidates"
"""Section ids the predictor proposed when the turn started."""
PREHYDRATE_TURN_CALLS: Final = "prehydrate.turn.calls"
PREHYDRATE_TURN_HITS: Final = "prehydrate.turn.hits"
PREHYDRATE_TURN_INFLIGHT: Final = "prehydrate.turn.inflight"
PREHYDRATE_TURN_MISSES: Final = "prehydrate.turn.misses"
PREHYDRATE_TURN_ERRORS: Final = "prehydrate.turn.errors"
PREHYDRATE_TURN_PREFETCHED: Final = "prehydrate.turn.prefetched"
PREHYDRATE_TURN_USED: Final = "prehydrate.turn.used"
PREHYDRATE_TURN_WASTED: Final = "prehydrate.turn.wasted"
PREHYDRATE_TURN_CANCELLED: Final = "prehydrate.turn.cancelled"
PREHYDRATE_TURN_FAILED: Final = "prehydrate.turn.failed"
PREHYDRATE_TURN_BYTES_PREFETCHED: Final = "prehydrate.turn.bytes_prefetched"
PREHYDRATE_TURN_BYTES_WASTED: Final = "prehydrate.turn.bytes_wasted"
PREHYDRATE_TURN_WAIT_DURATION: Final = "prehydrate.turn.wait.duration"
"""Seconds the turn's calls waited for content, summed."""
PREHYDRATE_TURN_DURATION: Final = "prehydrate.turn.duration"
"""Seconds from entering the turn to its bailout."""
PREHYDRATE_TURN_HIT_RATE: Final = "prehydrate.turn.hit_rate"
PREHYDRATE_TURN_COVERED_RATE: Final = "prehydrate.turn.covered_rate"
PREHYDRATE_TURN_MAX_INFLIGHT: Final = "prehydrate.turn.max_inflight"

# -- metric names -----------------------------------------------------------------------------------

METRIC_LOOKUPS: Final = "prehydrate.cache.lookups"
"""Counter of ``request_context`` calls by ``prehydrate.cache.result`` (``error`` for failed calls)."""
METRIC_PREFETCHES: Final = "prehydrate.prefetches"
"""Counter of settled prefetches by ``prehydrate.prefetch.outcome``."""
METRIC_LOOKUP_WAIT: Final = "prehydrate.lookup.wait.duration"
"""Histogram (seconds) of the wait of each answered call, by ``prehydrate.cache.result``."""
METRIC_HYDRATED: Final = "prehydrate.content.hydrated"
"""Counter (unit ``By``: the unit is never repeated in a name) of bytes hydrated from sources, by
``prehydrate.hydration.kind``."""
METRIC_WASTED: Final = "prehydrate.content.wasted"
"""Counter (unit ``By``) of prefetched bytes discarded unused at bailout."""
