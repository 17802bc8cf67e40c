"""prehydrate as an MCP tool server (stdio and streamable HTTP).

``create_server(engine)`` returns an ``MCPServer`` with:

- the tool ``request_context(section=None, query=None)`` (read-only, idempotent, structured output
  ``section, title, content, outcome, waited_ms, version, delta, base_version``), served from the
  warm cache; ``since_version`` asks for a unified diff against a version the caller holds;
- the resources ``prehydrate://sections`` (the catalog, JSON) and ``prehydrate://sections/{+id}``;
- the prompt ``compiled_context(task, query)``: the compiled prefix; it also starts a turn.

Sessions and turns are derived without MCP sessions (``_meta["prehydrate/session"]``, the legacy
``mcp-session-id`` header, the token's client, else the connection: per client, never per tenant); a
turn ends after an idle gap.
From the command line: ``prehydrate serve [PATH ...] [--transport stdio|http]``. See docs/mcp.md.

Example:
    >>> import prehydrate as ph
    >>> from prehydrate.mcp_server import build_engine, create_server
    >>> server = create_server(build_engine())
    >>> server.name
    'prehydrate'
"""

from __future__ import annotations

from prehydrate.mcp_server._auth import TOKENS_ENV, TenantTokenVerifier, load_tokens, static_auth_settings
from prehydrate.mcp_server._build import build_engine, default_traces_path
from prehydrate.mcp_server._http import HttpLimits, run_http
from prehydrate.mcp_server._server import ContextOutput, ServerSettings, create_server, session_manager
from prehydrate.mcp_server._sessions import SessionKey, SessionManager, SessionPolicy

__all__ = [
    "ContextOutput",
    "HttpLimits",
    "ServerSettings",
    "SessionKey",
    "SessionManager",
    "SessionPolicy",
    "TOKENS_ENV",
    "TenantTokenVerifier",
    "build_engine",
    "create_server",
    "default_traces_path",
    "load_tokens",
    "run_http",
    "session_manager",
    "static_auth_settings",
]
