"""Bearer-token auth for the HTTP transport: static tokens, each mapped to a tenant.

Tokens come from a JSON file (``{"token": "tenant", ...}``) or from the ``PREHYDRATE_TOKENS``
environment variable (the same JSON, or ``token=tenant,token2=tenant2``). The server plugs
:class:`TenantTokenVerifier` into the SDK's ``TokenVerifier`` seam, so the SDK answers a request
without a valid token with ``401`` and a ``WWW-Authenticate`` header before any tool runs. The
tenant travels on the ``AccessToken`` (``claims["tenant"]``) and scopes the cache and prefetching of
everything the request does; the subject names the client (a key of its token), not the tenant, so
each token is its own client with its own sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings

import prehydrate as ph

__all__ = [
    "SCOPE",
    "TOKENS_ENV",
    "TenantTokenVerifier",
    "client_key",
    "current_principal",
    "load_tokens",
    "static_auth_settings",
]

TOKENS_ENV = "PREHYDRATE_TOKENS"
"""Environment variable holding the token -> tenant map."""

SCOPE = "context:read"
"""The scope every static token grants (and the server requires)."""

_MIN_TOKEN_CHARS = 16


def _digest(token: str) -> bytes:
    return hashlib.sha256(ph.utf8(token)).digest()


def client_key(digest: bytes) -> str:
    """A stable, non-secret name for the client holding a token: a prefix of its SHA-256 (never the token)."""
    return "token-" + digest.hex()[:16]


class TenantTokenVerifier(TokenVerifier):
    """Accepts a fixed set of bearer tokens; each names the tenant its requests act for.

    Tokens are kept as SHA-256 digests and compared with ``hmac.compare_digest``, so the verifier
    holds no plaintext and its timing does not reveal how much of a guess was right.
    """

    def __init__(self, tokens: Mapping[str, str]) -> None:
        if not tokens:
            raise ph.ConfigError("auth needs at least one token")
        self._tenants: list[tuple[bytes, str]] = []
        for token, tenant in tokens.items():
            if not isinstance(token, str) or len(token) < _MIN_TOKEN_CHARS:
                raise ph.ConfigError(f"every token must be a string of at least {_MIN_TOKEN_CHARS} characters")
            if not isinstance(tenant, str) or not tenant.strip():
                raise ph.ConfigError("every token must map to a non-empty tenant name")
            self._tenants.append((_digest(token), tenant))

    async def verify_token(self, token: str) -> AccessToken | None:
        """The ``AccessToken`` of a known token, ``None`` otherwise.

        Its subject (the principal) is a key of the token itself, not the tenant, so two agents of
        one tenant holding two tokens are two clients with two sessions; ``claims["tenant"]`` carries
        the tenant that scopes what they fetch.
        """
        digest = _digest(token)
        found: str | None = None
        for known, tenant in self._tenants:  # no early exit: constant work whatever matches
            if hmac.compare_digest(known, digest):
                found = tenant
        if found is None:
            return None
        client = client_key(digest)
        return AccessToken(token=token, client_id=client, scopes=[SCOPE], subject=client, claims={"tenant": found})


def _parse(text: str, origin: str) -> dict[str, str]:
    text = text.strip()
    if not text:
        raise ph.ConfigError(f"{origin}: no tokens")
    if text.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ph.ConfigError(f"{origin}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ph.ConfigError(f"{origin}: expected a JSON object mapping token strings to tenant strings")
        return dict(data)
    out: dict[str, str] = {}
    for item in text.split(","):
        token, sep, tenant = item.strip().partition("=")
        if not sep:
            raise ph.ConfigError(f"{origin}: expected token=tenant pairs separated by commas")
        out[token.strip()] = tenant.strip()
    return out


def load_tokens(path: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The token -> tenant map from ``path`` (JSON) and/or ``$PREHYDRATE_TOKENS``; empty if neither.

    Raises:
        prehydrate.ConfigError: unreadable file or malformed content (the message names the origin,
            never a token).
    """
    tokens: dict[str, str] = {}
    if path is not None:
        p = Path(path)
        try:
            text = ph.read_text(p, "the token file")
        except ph.InputError as exc:  # missing, unreadable or not UTF-8
            raise ph.ConfigError(str(exc)) from exc
        tokens.update(_parse(text, str(p)))
    environ = os.environ if env is None else env
    raw = environ.get(TOKENS_ENV)
    if raw:
        tokens.update(_parse(raw, f"${TOKENS_ENV}"))
    return tokens


def static_auth_settings(base_url: str) -> AuthSettings:
    """SDK auth settings for static tokens: require :data:`SCOPE`, no OAuth metadata routes.

    There is no authorization server behind static tokens, so no protected-resource metadata is
    advertised (``resource_server_url=None``); ``issuer_url`` is the server itself.
    """
    return AuthSettings(issuer_url=base_url, resource_server_url=None, required_scopes=[SCOPE])  # type: ignore[arg-type]


def current_principal() -> tuple[str | None, str | None]:
    """``(principal, tenant)`` of the request being served; ``(None, None)`` without auth."""
    token = get_access_token()
    if token is None:
        return None, None
    claims = token.claims or {}
    tenant = claims.get("tenant")
    tenant = tenant if isinstance(tenant, str) and tenant else token.client_id
    return token.subject or token.client_id, tenant
