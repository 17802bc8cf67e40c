"""prehydrate: make context arrive before an LLM agent asks for it.

Compile a task's context into a byte-stable prefix with section stubs, predict which sections the
model will request, hydrate them in the background into a warm cache, and bail out of what was not
used at the end of the turn. See docs/index.md for the guide.
"""

from __future__ import annotations

from ._cache import CacheEntry, CacheKey, CacheTier, DiskTier, MemoryTier, WarmCache
from ._catalog import Catalog
from ._compile import CompiledContext, GlossaryError, compile_context, load_glossary
from ._data import sample_sections_path, sample_traces_path
from ._engine import ContextResult, Engine, EngineLimits, Session, Turn, TurnReport
from ._errors import (
    CacheError,
    ConfigError,
    HydrationTimeout,
    InputError,
    MalformedInputError,
    NoMatchError,
    PathTraversalError,
    PrehydrateError,
    RequestTooLargeError,
    SourceError,
    UnknownSectionError,
)
from ._events import (
    EventBus,
    Lookup,
    LookupFailed,
    PrefetchFinished,
    PrefetchSettled,
    PrefetchStarted,
    TurnEnded,
    TurnStarted,
)
from ._predict import Candidate, ContextRequest, Learner, PredictionState, Predictor, SequentialPredictor
from ._prefetch import PrefetchPolicy, PrefetchRecord
from ._sections import Hydrated, Scope, Section
from ._sources import CallableSource, DirectorySource, JsonlSource, MockSource, Source, sources_from_paths
from ._traces import Call, SessionTrace, TaskSpec, TraceStore, TurnTrace, read_traces, write_traces

__version__ = "0.1.0"


def default_predictor() -> Predictor:
    """The default predictor (document order until the learned ensemble lands)."""
    return SequentialPredictor()


__all__ = [
    "CacheEntry",
    "CacheError",
    "CacheKey",
    "CacheTier",
    "Call",
    "CallableSource",
    "Candidate",
    "Catalog",
    "CompiledContext",
    "ConfigError",
    "ContextRequest",
    "ContextResult",
    "DirectorySource",
    "DiskTier",
    "Engine",
    "EngineLimits",
    "EventBus",
    "GlossaryError",
    "Hydrated",
    "HydrationTimeout",
    "InputError",
    "JsonlSource",
    "Learner",
    "Lookup",
    "LookupFailed",
    "MalformedInputError",
    "MemoryTier",
    "MockSource",
    "NoMatchError",
    "PathTraversalError",
    "PredictionState",
    "Predictor",
    "PrefetchFinished",
    "PrefetchPolicy",
    "PrefetchRecord",
    "PrefetchSettled",
    "PrefetchStarted",
    "PrehydrateError",
    "RequestTooLargeError",
    "Scope",
    "Section",
    "SequentialPredictor",
    "Session",
    "SessionTrace",
    "Source",
    "SourceError",
    "TaskSpec",
    "TraceStore",
    "Turn",
    "TurnEnded",
    "TurnReport",
    "TurnStarted",
    "TurnTrace",
    "UnknownSectionError",
    "WarmCache",
    "__version__",
    "compile_context",
    "default_predictor",
    "load_glossary",
    "read_traces",
    "sample_sections_path",
    "sample_traces_path",
    "sources_from_paths",
    "write_traces",
]
