"""The MCP server: the ``request_context`` tool, the catalog resources and the compiled-context prompt.

Everything a client can reach goes through one Engine: the tool serves sections from the warm cache
inside the caller's session and turn (see ``_sessions``), the resources read the same cache, and the
prompt compiles the byte-stable prefix and opens a turn so prefetching starts before the model's
first call. Errors a model can act on (unknown id, bad arguments, oversized query) come back as tool
errors with a message that says what to do next; the server never crashes on them.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import anyio
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, ToolAnnotations
from pydantic import BaseModel, Field

import prehydrate as ph
from prehydrate.mcp_server._auth import current_principal
from prehydrate.mcp_server._prompt import DEFAULT_PROMPT_BUDGET_TOKENS, compile_prompt
from prehydrate.mcp_server._protocol import ProtocolServer, install_protocol, recorded_task_types
from prehydrate.mcp_server._sessions import SessionKey, SessionManager, SessionPolicy
from prehydrate.mcp_server._subscriptions import CATALOG_URI, section_uri
from prehydrate.mcp_server._telemetry import CallTelemetry

__all__ = ["ContextOutput", "ServerSettings", "create_server", "session_manager"]

SECTION_URI_TEMPLATE = "prehydrate://sections/{+id}"

INSTRUCTIONS = (
    "This server holds reference context (policies, procedures, definitions, code) that is not in "
    "your prompt. The `compiled_context` prompt lists every section as a one-line stub; call the "
    "`request_context` tool with a section id whenever the task needs one of them, instead of "
    "guessing. Sections the server predicts you will need are already warm, so fetching is cheap."
)

TOOL_DESCRIPTION = (
    "Read one section of reference context that is not in your prompt.\n\n"
    "Call this whenever the task depends on something listed under 'Sections available on request' "
    "(or in the prehydrate://sections resource): a policy, procedure, definition, limit or piece of "
    "code. Do not answer such details from memory; fetch the section first. Call it again for each "
    "further section you need.\n\n"
    "Pass exactly one argument: `section`, an exact id from the catalog such as 'billing/refunds' "
    "(preferred), or `query`, a few key words when you do not know the id (the best-matching section "
    "is returned). Read-only and idempotent; predicted sections are served instantly from a warm cache."
)


SectionArg = Annotated[
    str | None, Field(description="Exact section id from the catalog, e.g. 'billing/refunds'. Preferred.")
]
SinceArg = Annotated[
    str | None,
    Field(
        description="The `version` of this section you already hold (from an earlier call); when it changed "
        "since, you get a unified diff (`delta: true`) instead of the whole text, if that is smaller."
    ),
]
QueryArg = Annotated[
    str | None, Field(description="A few key words, when you do not know the section id (instead of `section`).")
]


class ContextOutput(BaseModel):
    """The structured result of ``request_context``."""

    section: str = Field(description="Id of the section returned.")
    title: str = Field(description="Title of the section.")
    content: str = Field(
        description="The full text of the section; with `delta: true`, a unified diff from `base_version`."
    )
    outcome: Literal["hit", "inflight", "miss"] = Field(
        description="hit: served from the warm cache; inflight: joined a running prefetch; miss: loaded on demand."
    )
    waited_ms: float = Field(description="Milliseconds the server waited for the content.")
    version: str = Field(description="Content version (hash); changes when the section changes.")
    delta: bool = Field(
        default=False, description="True: `content` is a unified diff from `base_version` to `version`."
    )
    base_version: str | None = Field(default=None, description="The version the diff starts from (with `delta`).")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """What the MCP server calls itself and how it groups requests."""

    name: str = "prehydrate"
    """Server name reported to clients."""
    instructions: str = INSTRUCTIONS
    """Server instructions reported to clients (hosts may show them to the model)."""
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    """Session and turn rules (idle gap, expiry, recording, the ``_meta`` session key)."""
    max_query_chars: int | None = None
    """Longest ``query`` accepted; ``None`` uses the engine's ``EngineLimits.max_query_chars``."""
    prompt_budget_tokens: int | None = DEFAULT_PROMPT_BUDGET_TOKENS
    """Tokens the ``compiled_context`` stub list may take (most useful stubs first); ``None``: no bound."""


_MANAGERS: weakref.WeakKeyDictionary[MCPServer[Any], SessionManager] = weakref.WeakKeyDictionary()


def session_manager(server: MCPServer[Any]) -> SessionManager:
    """The session manager of a server made by :func:`create_server` (open sessions, turn reports)."""
    try:
        return _MANAGERS[server]
    except KeyError:
        raise ph.ConfigError("this server was not made by prehydrate.mcp_server.create_server") from None


def _connection_of(rc: ServerRequestContext[Any, Any]) -> tuple[object | None, str | None]:
    """An object living as long as the client's stream, and the HTTP peer ``host:port``.

    The SDK keeps the per-stream connection on the request's session without a public accessor.
    Only stream transports (stdio, in-memory) have a standalone channel; HTTP requests are told
    apart by their TCP peer instead.
    """
    stream: object | None = None
    conn = getattr(rc.session, "_connection", None)
    if conn is not None and getattr(conn, "has_standalone_channel", False):
        stream = conn.outbound
    client = getattr(rc.request, "client", None)
    peer = f"{client.host}:{client.port}" if client is not None else None
    return stream, peer


def _tool_error(exc: ph.PrehydrateError, section: str | None, query: str | None) -> ToolError:
    """A message the model can act on, for each kind of failure."""
    if isinstance(exc, ph.UnknownSectionError):
        hint = (
            f" Did you mean {', '.join(repr(s) for s in exc.suggestions)}?"
            if exc.suggestions
            else " Pick an id from the catalog (resource prehydrate://sections) or pass `query` instead."
        )
        return ToolError(f"Unknown section {exc.key!r}.{hint}")
    if isinstance(exc, ph.PathTraversalError):
        return ToolError(
            f"Section id {section!r} is not allowed: ids are catalog keys such as 'billing/refunds', "
            "not file paths ('..', absolute paths and drive letters are refused)."
        )
    if isinstance(exc, ph.RequestTooLargeError):
        return ToolError(f"The {exc.what} is too long ({exc.size} > {exc.limit}). Use a few key words or a section id.")
    if isinstance(exc, ph.NoMatchError):
        return ToolError(
            f"No section matches the query {exc.query[:80]!r}. Try other key words, or pick an id from the "
            "catalog (resource prehydrate://sections)."
        )
    if isinstance(exc, ph.SourceError):
        return ToolError(f"Could not load section {exc.section_id or section!r}: {exc}. Try again shortly.")
    return ToolError(str(exc))


def create_server(
    engine: ph.Engine,
    settings: ServerSettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    auth: AuthSettings | None = None,
) -> MCPServer[Any]:
    """An ``MCPServer`` exposing ``engine`` through the ``request_context`` tool.

    The server's lifespan starts the engine (building the catalog, learning from the TraceStore) and,
    on shutdown, bails out of every open turn and records every session. It does not close the
    engine: whoever built the engine closes it (``async with engine``).

    Args:
        engine: the engine to serve.
        settings: name, instructions and session rules.
        token_verifier: bearer-token verification for HTTP (see ``TenantTokenVerifier``); the
            token's tenant scopes the cache and prefetching.
        auth: SDK auth settings; required with ``token_verifier``.

    Example:
        >>> import prehydrate as ph
        >>> from prehydrate.mcp_server import create_server
        >>> server = create_server(ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]))
        >>> server.name
        'prehydrate'
    """
    settings = settings if settings is not None else ServerSettings()
    sessions = SessionManager(engine, settings.sessions)
    max_query = settings.max_query_chars or engine.limits.max_query_chars
    users = 0

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[SessionManager]:
        nonlocal users
        await engine.start()
        users += 1
        try:
            yield sessions
        finally:
            users -= 1
            if users == 0:  # in-memory clients each enter the lifespan; close on the last one out
                with anyio.CancelScope(shield=True):  # a cancelled shutdown must still record sessions
                    await sessions.aclose()

    server = ProtocolServer(
        settings.name,
        instructions=settings.instructions,
        version=ph.__version__,
        lifespan=lifespan,
        token_verifier=token_verifier,
        auth=auth,
    )
    _MANAGERS[server] = sessions
    # Section changes reach subscribed clients; the subscription lives as long as the engine does.
    engine.subscribe(server.notifier.on_event)

    def identify(ctx: Context[Any, Any]) -> SessionKey:
        # read request_context once: every Context property goes through pydantic's __getattr__
        return identify_request(ctx.request_context)

    def identify_request(rc: ServerRequestContext[Any, Any]) -> SessionKey:
        principal, tenant = current_principal()
        stream, peer = _connection_of(rc)
        meta: Mapping[str, Any] | None = rc.meta
        headers: Mapping[str, str] | None = getattr(rc.request, "headers", None)
        return sessions.identify(
            meta=meta, principal=principal, tenant=tenant, headers=headers, connection=stream, peer=peer
        )

    telemetry = CallTelemetry(server, engine, sessions, identify_request)

    @server.tool(
        name="request_context",
        title="Request context",
        description=TOOL_DESCRIPTION,
        annotations=ToolAnnotations(
            title="Request context",
            read_only_hint=True,
            idempotent_hint=True,
            destructive_hint=False,
            open_world_hint=False,
        ),
        structured_output=True,
    )
    async def request_context(
        ctx: Context[Any, Any],
        section: SectionArg = None,
        query: QueryArg = None,
        since_version: SinceArg = None,
    ) -> ContextOutput:
        if (section is None) == (query is None):
            raise ToolError(
                "Pass exactly one of `section` (an id from the catalog, e.g. 'billing/refunds') or `query` "
                "(a few key words)" + (", not both." if section is not None else "; neither was given.")
            )
        if query is not None and len(query) > max_query:
            raise ToolError(
                f"The query is too long ({len(query)} characters; the limit is {max_query}). "
                "Use a few key words, or pass a section id."
            )
        try:
            key = identify(ctx)
            turn, entry = await sessions.begin_call(key, query=query)
            then = None
            try:
                # No tool_call_id: MCP does not carry the model's, and the JSON-RPC id is not it.
                result = await turn.request_context(section, query=query, repredict=False, since_version=since_version)
                then = turn.repredict  # predict the next sections in the idle time after answering
            finally:
                sessions.end_call(entry, then=then)
        except ph.PrehydrateError as exc:
            raise _tool_error(exc, section, query) from exc
        return ContextOutput(
            section=result.section_id,
            title=result.title,
            content=result.diff if result.diff is not None else result.content,
            outcome=result.outcome,
            waited_ms=round(result.waited_ms, 3),
            version=result.version,
            delta=result.delta,
            base_version=result.base_version,
        )

    @server.resource(
        CATALOG_URI,
        name="sections",
        title="Section catalog",
        description="Every section available through request_context: id, title, size and a one-line summary.",
        mime_type="application/json",
    )
    def catalog() -> str:
        stubs = [
            {
                "id": s.id,
                "title": s.title,
                "summary": s.summary,
                "tags": list(s.tags),
                "tokens": s.tokens,
                "bytes": s.size_bytes,
                "version": s.version,
                # Percent-encode what a URI would read as a delimiter ('#' starts a fragment, '?' a
                # query): DirectorySource ids carry '#heading'. The template hands the id back decoded.
                "uri": section_uri(s.id),
            }
            for s in engine.catalog
        ]
        return json.dumps(stubs, ensure_ascii=False)

    @server.resource(
        SECTION_URI_TEMPLATE,
        name="section",
        title="Section",
        description="The content of one section, served through the same warm cache as request_context.",
        mime_type="text/markdown",
    )
    async def section_resource(id: str, ctx: Context[Any, Any]) -> str:
        try:
            key = identify(ctx)
            found = engine.catalog.get(id)
            t0 = time.perf_counter()
            entry, outcome, tier = await engine.lookup(found, sessions.scope_of(key))
            telemetry.read(key, found.id, entry, outcome, tier, t0)
        except ph.UnknownSectionError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        except ph.PrehydrateError as exc:
            raise ResourceError(str(exc)) from exc
        return entry.content

    @server.prompt(
        name="compiled_context",
        title="Compiled context",
        description=(
            "The compiled context prefix for a task: rules, definitions and a stub for every section, "
            "ending with the task and the query. Using it starts a new turn and prefetches the sections "
            "the model is predicted to request."
        ),
    )
    async def compiled_context(task: str, query: str, ctx: Context[Any, Any]) -> list[Message]:
        try:
            key = identify(ctx)
            task, query = ph.clean_text(task), ph.clean_text(query)  # a client's "\ud800" escape: U+FFFD
            turn = await sessions.new_turn(key, query=query, task_type=task)
            budget = settings.prompt_budget_tokens
            text = await asyncio.to_thread(compile_prompt, engine, turn, task=task, query=query, budget_tokens=budget)
        except ph.PrehydrateError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from exc
        return [UserMessage(text)]

    install_protocol(
        server,
        section_ids=lambda: engine.catalog.ids,
        task_types=lambda: recorded_task_types(engine),
        section_template=SECTION_URI_TEMPLATE,
        prompt="compiled_context",
    )
    return server
