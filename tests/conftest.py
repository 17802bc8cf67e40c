"""Suite-wide settings.

Hypothesis draws new examples on every run by default; under CI (``CI`` set) it derandomizes, so
a red CI run is reproducible by the next one and never a coin toss. Locally it keeps exploring, and
what it finds is pinned with ``@example`` in the test.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
