"""RedisTier: the warm tier that server replicas share.

Several MCP servers behind a load balancer see different requests of the same conversations. With
one Redis behind them, a section one replica prefetched is a hit on every other, and a cold section
requested by two replicas at once is hydrated once: the first takes a short-lived fill lock
(``SET NX PX``), the others poll for its entry and take it, or hydrate themselves when the holder
neither stores nor releases within ``fill_wait_s`` (a crashed replica never blocks the rest).

Redis is optional: ``redis.asyncio`` is imported when a RedisTier is made, never by ``import
prehydrate``. A Redis that is down or slow costs at most one short socket timeout: the tier then
opens a circuit breaker and skips Redis (raising :class:`CacheError` at once, which the warm cache
treats as a miss and logs once) for a back-off period that doubles while Redis stays down, and goes
back to Redis on the first call after it answers again.

Keys are ``<prefix>:e:<sha256 of (tenant, partition, section, version)>`` for entries, ``<prefix>:f:<same>``
for fill locks and ``<prefix>:v:<sha256 of the section id>`` for version stamps (``<time_ns> <version>``,
the latest version a replica saw a live section at; see :class:`~prehydrate.VersionStamps`); values
are the JSON :class:`CacheEntry` (its own key and checksum, verified on every
read, never a pickle). See docs/scaling.md for deployment and sizing.

The checksum catches torn writes, not forgeries: anyone who can write to Redis can also compute a
SHA-256. With ``secret`` set, every value is prefixed with an HMAC-SHA256 of it under that key, and
a value whose tag does not verify (planted, altered, or written without the secret) is refused as a
miss, counted in ``forged`` and logged once. Without a secret, Redis is trusted like the process's
own memory: whoever can write to it can serve any content to any tenant. Version stamps are sealed
the same way (after a plain ``<time_ns> `` prefix the newer-wins script compares), so a planted stamp
cannot point a replica back at an older version.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from ._cache import CacheEntry, CacheKey, CacheTier, FillLease
from ._errors import CacheError, ConfigError
from ._text import encode_text, from_utf8, utf8

__all__ = ["RedisTier"]

logger = logging.getLogger("prehydrate.redis")

_MAC_MAGIC = b"phmac1:"
_MAC_BYTES = 32

_T = TypeVar("_T")

_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
"""Delete the fill lock only if this process still holds it (it may have expired and been retaken)."""

_STAMP_SCRIPT = """
local old = redis.call('get', KEYS[1])
if old and tonumber(string.match(old, '^%d+')) > tonumber(ARGV[1]) then
    return 0
end
redis.call('set', KEYS[1], ARGV[2])
return 1
"""
"""Set a version stamp unless the stored one is newer (two replicas observing changes in either order)."""

_POLL_FIRST_S = 0.005
_POLL_MAX_S = 0.05
"""A waiter polls the entry and the lock at 5 ms, doubling up to 50 ms: quick for fast sources,
a few requests per second for slow ones."""


def _glob_escape(text: str) -> str:
    """Escape Redis glob characters so a prefix like ``a*`` matches only itself in SCAN."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class _Lease:
    """A held fill lock; released with compare-and-delete so an expired lock retaken by another
    process is never deleted from under it."""

    __slots__ = ("_release",)

    def __init__(self, release: Callable[[], Awaitable[object]]) -> None:
        self._release = release

    async def release(self) -> None:
        try:
            await self._release()
        except CacheError:
            pass  # the lock expires on its own (lock_ttl_s); waiters then hydrate themselves


def _check_settings(
    *,
    prefix: object,
    ttl_s: float | None,
    max_value_bytes: int,
    positive: Mapping[str, float],
    secret: str | bytes | None,
) -> None:
    """Refuse out-of-range ``RedisTier`` arguments, one :class:`ConfigError` naming the argument."""
    try:
        import redis  # noqa: F401, TID251  (optional dependency: say which extra installs it)
    except ImportError as exc:
        raise ConfigError("RedisTier needs redis-py: pip install 'prehydrate[redis]'") from exc
    if not isinstance(prefix, str) or not prefix:
        raise ConfigError("RedisTier prefix must be a non-empty string")
    if max_value_bytes <= 0:
        raise ConfigError("RedisTier max_value_bytes must be positive")
    if ttl_s is not None and ttl_s <= 0:
        raise ConfigError("RedisTier ttl_s must be positive or None")
    for what, value in positive.items():
        if value <= 0:
            raise ConfigError(f"RedisTier {what} must be positive")
    if secret is not None and len(secret) < 16:
        raise ConfigError("RedisTier secret must be at least 16 characters (use e.g. secrets.token_hex(32))")


def _connect(url: str, socket_timeout_s: float, connect_timeout_s: float) -> Any:
    """A ``redis.asyncio.Redis`` for ``url`` that never retries on its own; a bad URL is a :class:`ConfigError`."""
    import redis.asyncio as aioredis  # noqa: TID251  (optional dependency, imported on use)
    from redis.asyncio.retry import Retry  # noqa: TID251
    from redis.backoff import NoBackoff  # noqa: TID251

    try:
        return aioredis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            # No retries inside redis-py: the breaker decides when to try again, so a dead
            # Redis costs one timeout, not retries x backoff on every call.
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise ConfigError(f"invalid Redis URL {url!r}: {exc}") from exc


class RedisTier(CacheTier):
    """A warm-cache tier in Redis, shared by every process using the same URL and prefix.

    Args:
        url: ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS, ``unix://`` sockets).
        prefix: namespace of this deployment's keys; deployments sharing one Redis use distinct
            prefixes, and :meth:`clear` removes only its own prefix.
        ttl_s: upper bound on how long an entry lives in Redis (None: only the entry's own TTL and
            Redis eviction bound it).
        max_value_bytes: entries whose serialised size exceeds this are not stored (``put`` returns
            False), so one huge section cannot evict hundreds of small ones.
        socket_timeout_s: per-command socket timeout; keep it short, a slow Redis must not be
            slower than hydrating from the source.
        connect_timeout_s: TCP connect timeout.
        backoff_s: how long the circuit breaker skips Redis after a failure; doubles on each
            further failure up to ``max_backoff_s``.
        max_backoff_s: the longest back-off.
        lock_ttl_s: lifetime of a fill lock: the longest one hydration may hold back others.
        fill_wait_s: how long a replica waits for another's fill before hydrating itself.
        client: an existing ``redis.asyncio.Redis`` to use instead of ``url`` (not closed by
            :meth:`aclose`).
        secret: a key shared by the replicas; every value is authenticated with an HMAC-SHA256
            under it, and values that do not verify are misses (see ``forged``). ``None``: Redis
            is trusted (anyone able to write to it can plant entries every tenant is served).

    Raises:
        ConfigError: redis-py is missing, or an argument is out of range.

    Example:
        >>> import prehydrate as ph
        >>> tier = ph.RedisTier("redis://127.0.0.1:6379/0", prefix="myapp")
        >>> cache = ph.WarmCache(tiers=[ph.MemoryTier(), tier])
    """

    name = "redis"

    # Counters (class-level zeros; each instance counts in its own attribute from the first increment).
    failures: int = 0
    """Commands that failed (connection refused, timeout, Redis error)."""
    skipped: int = 0
    """Calls answered without touching Redis because the breaker was open."""
    declined: int = 0
    """Entries not stored because they exceeded ``max_value_bytes``."""
    fills: int = 0
    """Fill locks acquired (this process hydrated for everyone)."""
    fill_waits: int = 0
    """Times this process waited for another process's fill."""
    fill_timeouts: int = 0
    """Waits that ran out (the holder was slow or gone) before the entry appeared."""
    forged: int = 0
    """Values refused because their HMAC did not verify under ``secret`` (planted or altered)."""
    _forgery_logged: bool = False

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "prehydrate",
        ttl_s: float | None = None,
        max_value_bytes: int = 4 << 20,
        socket_timeout_s: float = 0.25,
        connect_timeout_s: float = 0.5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        lock_ttl_s: float = 30.0,
        fill_wait_s: float = 5.0,
        client: Any = None,
        secret: str | bytes | None = None,
    ) -> None:
        super().__init__()
        _check_settings(
            prefix=prefix,
            ttl_s=ttl_s,
            max_value_bytes=max_value_bytes,
            positive={
                "socket_timeout_s": socket_timeout_s,
                "connect_timeout_s": connect_timeout_s,
                "backoff_s": backoff_s,
                "lock_ttl_s": lock_ttl_s,
                "fill_wait_s": fill_wait_s,
            },
            secret=secret,
        )
        from redis.exceptions import RedisError  # noqa: TID251  (optional dependency, checked above)

        self._secret = encode_text(secret, "RedisTier secret") if isinstance(secret, str) else secret
        self.url = url
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.max_value_bytes = max_value_bytes
        self.socket_timeout_s = socket_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max(max_backoff_s, backoff_s)
        self.lock_ttl_s = lock_ttl_s
        self.fill_wait_s = fill_wait_s
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        # Bound a whole command, not only each socket read: connect + send + read.
        self._op_timeout_s = connect_timeout_s + 2 * socket_timeout_s
        self._own_client = client is None
        self._client: Any = _connect(url, socket_timeout_s, connect_timeout_s) if client is None else client
        self._consecutive_failures = 0
        self._open_until = 0.0

    # -- keys ----------------------------------------------------------------------------------------

    def entry_key(self, key: CacheKey) -> str:
        """The Redis key holding ``key``'s entry."""
        return f"{self.prefix}:e:{key.digest}"

    def lock_key(self, key: CacheKey) -> str:
        """The Redis key of ``key``'s fill lock."""
        return f"{self.prefix}:f:{key.digest}"

    def stamp_key(self, section_id: str) -> str:
        """The Redis key of a section's version stamp (not scoped by tenant: the catalog is shared)."""
        return f"{self.prefix}:v:{hashlib.sha256(utf8(section_id)).hexdigest()}"

    # -- circuit breaker -----------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while the breaker skips Redis after a failure."""
        return time.monotonic() >= self._open_until

    async def _run(self, op: str, call: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run one Redis command through the breaker, mapping every failure to CacheError."""
        now = time.monotonic()
        if now < self._open_until:
            self.skipped += 1
            raise CacheError(
                f"redis at {self._safe_url()} skipped for {self._open_until - now:.1f}s after a failure",
                tier=self.name,
            )
        try:
            async with asyncio.timeout(self._op_timeout_s):
                result = await call(self._client)
        except self._errors as exc:
            self.failures += 1
            self._consecutive_failures += 1
            backoff = min(self.backoff_s * 2 ** (self._consecutive_failures - 1), self.max_backoff_s)
            self._open_until = time.monotonic() + backoff
            reason = str(exc) or type(exc).__name__
            raise CacheError(
                f"redis {op} at {self._safe_url()} failed ({reason}); skipping Redis for {backoff:.1f}s",
                tier=self.name,
            ) from exc
        self._consecutive_failures = 0
        return result

    def _safe_url(self) -> str:
        """The URL without its password, for messages."""
        head, sep, tail = self.url.rpartition("@")
        if not sep:
            return self.url
        scheme, _, _ = head.partition("://")
        return f"{scheme}://***@{tail}"

    # -- value authentication ------------------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        """True when values are signed and verified with a secret."""
        return self._secret is not None

    def _seal(self, data: bytes) -> bytes:
        """The stored form of a value: ``phmac1:`` + HMAC-SHA256 tag + value (the value alone without a secret)."""
        if self._secret is None:
            return data
        return _MAC_MAGIC + hmac.digest(self._secret, data, hashlib.sha256) + data

    def _open_value(self, stored: bytes) -> bytes | None:
        """The value inside ``stored``, or None when its tag does not verify (counted, logged once)."""
        if self._secret is None:
            return stored
        head = len(_MAC_MAGIC)
        tag, data = stored[head : head + _MAC_BYTES], stored[head + _MAC_BYTES :]
        if stored.startswith(_MAC_MAGIC) and hmac.compare_digest(tag, hmac.digest(self._secret, data, hashlib.sha256)):
            return data
        self.forged += 1
        if not self._forgery_logged:
            self._forgery_logged = True
            logger.warning(
                "redis at %s holds entries that fail authentication (planted, altered or written without "
                "this secret); they are treated as misses (counted in RedisTier.forged)",
                self._safe_url(),
            )
        return None

    # -- storage -------------------------------------------------------------------------------------

    async def _get(self, key: CacheKey) -> CacheEntry | None:
        name = self.entry_key(key)
        stored = await self._run("get", lambda c: c.get(name))
        if stored is None:
            return None
        data = self._open_value(bytes(stored))
        try:
            if data is None:
                raise CacheError("unauthenticated value", tier=self.name)
            return CacheEntry.from_bytes(data)
        except CacheError:
            self.rejected += 1
            await self._run("delete", lambda c: c.delete(name))
            return None

    async def _put(self, entry: CacheEntry) -> bool:
        data = self._seal(entry.to_bytes())
        if len(data) > self.max_value_bytes:
            self.declined += 1
            return False
        ttl: float | None = None
        if entry.expires_at is not None:
            ttl = entry.expires_at - time.time()
        if self.ttl_s is not None:
            ttl = self.ttl_s if ttl is None else min(ttl, self.ttl_s)
        px = None if ttl is None else int(ttl * 1000)
        if px is not None and px <= 0:
            return False
        name = self.entry_key(entry.key)
        await self._run("set", lambda c: c.set(name, data, px=px))
        return True

    async def _delete(self, key: CacheKey) -> None:
        name = self.entry_key(key)
        await self._run("delete", lambda c: c.delete(name))

    async def _clear(self) -> None:
        pattern = _glob_escape(self.prefix) + ":*"

        async def clear(c: Any) -> None:
            batch: list[Any] = []
            async for name in c.scan_iter(match=pattern, count=500):
                batch.append(name)
                if len(batch) >= 500:
                    await c.delete(*batch)
                    batch.clear()
            if batch:
                await c.delete(*batch)

        await self._run("clear", clear)

    async def aclose(self) -> None:
        """Close the connection pool (unless the client was passed in)."""
        if self._own_client:
            try:
                await self._client.aclose()
            except self._errors:
                pass  # closing a pool whose server is gone: nothing left to release

    # -- version stamps (VersionStamps) ---------------------------------------------------------------

    async def stamp_versions(self, versions: Mapping[str, str], time_ns: int) -> None:
        """Write each section's stamp, keeping a newer one another replica wrote (compare in a script)."""
        if not versions:
            return

        async def write(c: Any) -> None:
            pipe = c.pipeline(transaction=False)
            for sid, version in versions.items():
                # The leading time lets the script compare; the sealed copy is what a reader trusts.
                value = utf8(f"{time_ns} ") + self._seal(utf8(f"{time_ns} {sid} {version}"))
                pipe.eval(_STAMP_SCRIPT, 1, self.stamp_key(sid), str(time_ns), value)
            await pipe.execute()

        await self._run("stamp", write)

    async def stamped_version(self, section_id: str) -> tuple[int, str] | None:
        """The stamp of ``section_id``: (time_ns, version), or None (none written, or unreadable)."""
        name = self.stamp_key(section_id)
        raw = await self._run("stamped", lambda c: c.get(name))
        if raw is None:
            return None
        data = self._open_value(bytes(raw).partition(b" ")[2])  # with a secret, a forged stamp is refused
        if data is None:
            return None
        try:
            head, _, rest = from_utf8(data).partition(" ")
        except ValueError:  # not what a replica wrote: no stamp
            return None
        sid, _, version = rest.rpartition(" ")
        return (int(head), version) if head.isdigit() and sid == section_id else None

    # -- cross-process single-flight (FillCoordinator) -----------------------------------------------

    async def acquire_fill(self, key: CacheKey) -> FillLease | None:
        """Take ``key``'s fill lock (``SET NX PX``); None when another process holds it."""
        name = self.lock_key(key)
        token = secrets.token_hex(16)
        px = max(1, int(self.lock_ttl_s * 1000))
        acquired = await self._run("lock", lambda c: c.set(name, token, nx=True, px=px))
        if not acquired:
            return None
        self.fills += 1
        return _Lease(partial(self._release_fill, name, token))

    async def _release_fill(self, name: str, token: str) -> None:
        """Delete the lock ``name`` only while it still holds ``token`` (ours, not a retaken one)."""
        await self._run("release", lambda c: c.eval(_RELEASE_SCRIPT, 1, name, token))

    async def wait_fill(self, key: CacheKey) -> bool:
        """Poll until the entry appears or the lock goes away; False after ``fill_wait_s``."""
        self.fill_waits += 1
        entry_name, lock_name = self.entry_key(key), self.lock_key(key)

        async def probe(c: Any) -> list[int]:
            pipe = c.pipeline(transaction=False)
            pipe.exists(entry_name)
            pipe.exists(lock_name)
            result: list[int] = await pipe.execute()
            return result

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.fill_wait_s
        delay = _POLL_FIRST_S
        while True:
            has_entry, has_lock = await self._run("wait", probe)
            if has_entry or not has_lock:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.fill_timeouts += 1
                return False
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _POLL_MAX_S)
