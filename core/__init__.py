"""prehydrate: make context arrive before an LLM agent asks for it.

Compile a task's context into a byte-stable prefix with section stubs, predict which sections the
model will request, hydrate them in the background into a warm cache, and bail out of what was not
used at the end of the turn. See docs/index.md for the guide.
"""

from __future__ import annotations

from ._cache import (
    CacheEntry,
    CacheKey,
    CacheTier,
    DiskTier,
    FillCoordinator,
    FillLease,
    MemoryTier,
    VersionStamps,
    WarmCache,
)
from ._catalog import Catalog
from ._compile import CompiledContext, GlossaryError, compile_context, load_glossary
from ._conversations import Conversations
from ._data import sample_sections_path, sample_traces_path
from ._defaults import default_policy, default_predictor
from ._engine import Engine
from ._ensemble import EnsembleFit, EnsemblePredictor
from ._errors import (
    BusyError,
    CacheError,
    ConfigError,
    HydrationTimeout,
    InputError,
    MalformedInputError,
    ModelFileError,
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
    SectionsChanged,
    TurnEnded,
    TurnReport,
    TurnStarted,
)
from ._inputs import EngineLimits
from ._keeper import ConversationKeeper, ConversationPolicy, OpenCall
from ._learning import Learning, LearningPolicy
from ._lexical import LexicalPredictor, UsagePredictor
from ._live import LiveSource, SectionChanges
from ._markov import TracePredictor
from ._models import Persistable, load_model, save_model
from ._neighbors import NeighborPredictor
from ._predict import Candidate, ContextRequest, Learner, PredictionState, Predictor, SequentialPredictor
from ._prefetch import AdaptiveWidth, PrefetchPolicy, PrefetchRecord
from ._redis import RedisTier
from ._reference import ReferencePredictor
from ._replay import OraclePredictor, ReplayResult, replay, run_replay
from ._sections import Hydrated, Scope, Section, content_version, estimate_tokens, one_line_summary
from ._session import Session
from ._sources import (
    CallableSource,
    DirectorySource,
    JsonlSource,
    MockSource,
    Source,
    check_section_id,
    sources_from_paths,
)
from ._sql import SqlSource
from ._text import clean_text, read_text, utf8
from ._trace_store import TraceRetention, TraceStore
from ._traces import Call, SessionTrace, TaskSpec, TurnTrace, read_traces, write_traces
from ._turn import ContextResult, Turn
from ._workflow import FinishedTurn, TurnObserver, WorkflowDAG, WorkflowEdge, WorkflowNode, WorkflowPredictor

__version__ = "0.1.0"


__all__ = [
    "AdaptiveWidth",
    "BusyError",
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
    "ConversationKeeper",
    "ConversationPolicy",
    "Conversations",
    "DirectorySource",
    "DiskTier",
    "Engine",
    "EngineLimits",
    "EnsembleFit",
    "EnsemblePredictor",
    "EventBus",
    "FillCoordinator",
    "FillLease",
    "FinishedTurn",
    "GlossaryError",
    "Hydrated",
    "HydrationTimeout",
    "InputError",
    "JsonlSource",
    "Learner",
    "Learning",
    "LearningPolicy",
    "LexicalPredictor",
    "LiveSource",
    "Lookup",
    "LookupFailed",
    "MalformedInputError",
    "MemoryTier",
    "MockSource",
    "ModelFileError",
    "NeighborPredictor",
    "NoMatchError",
    "OpenCall",
    "OraclePredictor",
    "PathTraversalError",
    "Persistable",
    "PredictionState",
    "Predictor",
    "PrefetchFinished",
    "PrefetchPolicy",
    "PrefetchRecord",
    "PrefetchSettled",
    "PrefetchStarted",
    "PrehydrateError",
    "RedisTier",
    "ReferencePredictor",
    "ReplayResult",
    "RequestTooLargeError",
    "Scope",
    "Section",
    "SectionChanges",
    "SectionsChanged",
    "SequentialPredictor",
    "Session",
    "SessionTrace",
    "Source",
    "SourceError",
    "SqlSource",
    "TaskSpec",
    "TracePredictor",
    "TraceRetention",
    "TraceStore",
    "Turn",
    "TurnEnded",
    "TurnObserver",
    "TurnReport",
    "TurnStarted",
    "TurnTrace",
    "UnknownSectionError",
    "UsagePredictor",
    "VersionStamps",
    "WarmCache",
    "WorkflowDAG",
    "WorkflowEdge",
    "WorkflowNode",
    "WorkflowPredictor",
    "__version__",
    "check_section_id",
    "clean_text",
    "compile_context",
    "content_version",
    "default_policy",
    "default_predictor",
    "estimate_tokens",
    "load_glossary",
    "load_model",
    "one_line_summary",
    "read_text",
    "read_traces",
    "replay",
    "run_replay",
    "sample_sections_path",
    "sample_traces_path",
    "save_model",
    "sources_from_paths",
    "utf8",
    "write_traces",
]
