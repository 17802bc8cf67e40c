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
    "METRIC_BYTES_HYDRATED",
    "METRIC_BYTES_WASTED",
    "METRIC_LOOKUPS",
    "METRIC_LOOKUP_WAIT",
    "METRIC_PREFETCHES",
    "OPERATION_EXECUTE_TOOL",
    "PREHYDRATE_BYTES",
    "PREHYDRATE_CACHE_RESULT",
    "PREHYDRATE_CACHE_TIER",
    "PREHYDRATE_HYDRATION_KIND",
    "PREHYDRATE_NODE",
    "PREHYDRATE_PREFETCH_DURATION_MS",
    "PREHYDRATE_PREFETCH_ID",
    "PREHYDRATE_PREFETCH_LEAD_MS",
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
    "PREHYDRATE_TURN_DURATION_MS",
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
    "PREHYDRATE_TURN_WAIT_MS_TOTAL",
    "PREHYDRATE_TURN_WASTED",
    "PREHYDRATE_WAIT_MS",
    "SPAN_LOOKUP",
    "SPAN_PREFETCH",
    "SPAN_TURN",
    "TOOL_NAME",
]

# -- span names --------------------------------------------------------------------------------------

SPAN_LOOKUP: Final = "execute_tool request_context"
"""One ``request_context`` call (GenAI convention: ``{gen_ai.operation.name} {gen_ai.tool.name}``)."""
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

# -- prehydrate keys: lookups -----------------------------------------------------------------------

PREHYDRATE_CACHE_RESULT: Final = "prehydrate.cache.result"
"""``hit`` (served from the warm cache), ``inflight`` (joined a running prefetch) or ``miss``."""
PREHYDRATE_CACHE_TIER: Final = "prehydrate.cache.tier"
"""The cache tier that answered a hit (``memory``, ``disk``, ``redis``)."""
PREHYDRATE_SECTION_ID: Final = "prehydrate.section.id"
PREHYDRATE_WAIT_MS: Final = "prehydrate.wait_ms"
"""How long the caller waited for the content, in milliseconds."""
PREHYDRATE_PREFETCH_LEAD_MS: Final = "prehydrate.prefetch.lead_ms"
"""For a hit on a prefetched entry: how long before the request the prefetch had finished."""
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
PREHYDRATE_PREFETCH_DURATION_MS: Final = "prehydrate.prefetch.duration_ms"
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
PREHYDRATE_TURN_WAIT_MS_TOTAL: Final = "prehydrate.turn.wait_ms_total"
PREHYDRATE_TURN_DURATION_MS: Final = "prehydrate.turn.duration_ms"
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
METRIC_BYTES_HYDRATED: Final = "prehydrate.hydrated.bytes"
"""Counter of bytes hydrated from sources, by ``prehydrate.hydration.kind``."""
METRIC_BYTES_WASTED: Final = "prehydrate.wasted.bytes"
"""Counter of prefetched bytes discarded unused at bailout."""
