"""Suite-wide settings and the one rule for tests that need something pip does not install.

Hypothesis draws new examples on every run by default; under CI (``CI`` set) it derandomizes, so
a red CI run is reproducible by the next one and never a coin toss. Locally it keeps exploring, and
what it finds is pinned with ``@example`` in the test.

Some tests need a program that ``pip install -e ".[dev]"`` cannot bring: redis-server, node and the
npm-installed TypeScript MCP client, util-linux ``setpriv``. The README's ``python -m pytest`` must
pass on a fresh clone, so such a test calls :func:`require`, which skips it with a one-line reason
saying how to install the missing piece. CI (``.ci/run``) exports ``PREHYDRATE_REQUIRE_ALL=1``, and
then the same call fails the test instead: nothing is skipped there, so a missing install step in
CI turns red rather than quietly testing less.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REQUIRE_ALL = "PREHYDRATE_REQUIRE_ALL"
"""Set to ``1`` (CI does) to turn every :func:`require` skip into a failure."""


def require(present: object, reason: str) -> None:
    """Skip the calling test when ``present`` is falsy, or fail it under ``PREHYDRATE_REQUIRE_ALL=1``.

    Args:
        present: what was found (a path, a flag); falsy means it is missing.
        reason: one line naming what is missing and how to install it, e.g.
            ``"redis-server is not installed (apt-get install redis-server)"``.
    """
    if present:
        return
    if os.environ.get(REQUIRE_ALL) == "1":
        pytest.fail(f"{reason} [{REQUIRE_ALL}=1: required here, not skipped]", pytrace=False)
    pytest.skip(reason)
