"""One MCP request of the 2026-07-28 protocol as a plain JSON POST, for tests that need the wire.

The era needs no handshake: every request carries its envelope in ``_meta``. The body is written
with ``json.dumps`` (ASCII escapes), so a test can send what the SDK's own client refuses to, such as
a lone surrogate as ``\\ud800``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

__all__ = ["PROTOCOL", "post_request"]

PROTOCOL = "2026-07-28"
_ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": PROTOCOL,
    "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


async def post_request(
    http: httpx.AsyncClient,
    url: str,
    method: str,
    params: dict[str, Any],
    *,
    request_id: int = 1,
    token: str | None = None,
) -> httpx.Response:
    """POST ``method`` with ``params`` (their ``_meta`` kept beside the envelope); the raw response."""
    params = {**params, "_meta": {**params.get("_meta", {}), **_ENVELOPE}}
    body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "mcp-protocol-version": PROTOCOL,
        "mcp-method": method,
    }
    if "name" in params:
        headers["mcp-name"] = params["name"]
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await http.post(url, content=body.encode("ascii"), headers=headers)
