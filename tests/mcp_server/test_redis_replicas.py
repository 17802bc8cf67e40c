"""Two `prehydrate serve --transport http --redis URL` replicas behind one real redis-server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client
from mcp_types import CallToolResult

from tests._redis import free_port, running_redis

from .conftest import http_server


def _out(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_a_section_served_by_one_replica_is_a_redis_hit_on_the_other(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with running_redis(tmp_path / "redis") as redis:
        args = ("--redis", redis.url, "--redis-prefix", "fleet")
        with http_server(tmp_path / "a", *args) as (url_a, _), http_server(tmp_path / "b", *args) as (url_b, _):
            async with Client(url_a) as a:
                first = _out(await a.call_tool("request_context", {"section": "billing/refunds"}))
            stored = redis.keys("fleet:e:*")
            async with Client(url_b) as b:
                second = _out(await b.call_tool("request_context", {"section": "billing/refunds"}))
    assert stored, "replica a wrote nothing to Redis"
    assert second["outcome"] == "hit"
    assert second["content"] == first["content"] and second["content"]


async def test_a_replica_whose_redis_is_down_still_answers(tmp_path: Path) -> None:
    with http_server(tmp_path, "--redis", f"redis://127.0.0.1:{free_port()}/0") as (url, _):
        async with Client(url) as client:
            for section in ("billing/refunds", "billing/plans", "billing/refunds"):
                out = _out(await client.call_tool("request_context", {"section": section}))
                assert out["section"] == section and out["content"]
