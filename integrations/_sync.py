"""A background event loop for synchronous runs: ``app.invoke`` and a tool's ``invoke``.

The engine is asyncio through and through (prefetch tasks, single-flight, timers), and its tasks
must all live on one loop. A synchronous LangGraph run has no loop of its own, so its prehydrate
calls are sent to this one, a daemon thread per :class:`Prehydrator`, and waited for. An engine used
by synchronous runs therefore lives on this loop: use it from ``invoke`` or from ``ainvoke``, not both.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import prehydrate as ph

__all__ = ["Portal"]

T = TypeVar("T")


class Portal:
    """Runs coroutines on a private event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="prehydrate-sync", daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the portal's loop and return its result (re-raising its error).

        Raises:
            ConfigError: called from the portal's own loop, or from a running event loop (use the
                async API there: waiting here would block that loop).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise ph.ConfigError(
                "a synchronous prehydrate call was made inside a running event loop: "
                "use app.ainvoke / tool.ainvoke there"
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        """Stop the loop and its thread."""
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()
