"""The program in docs/langgraph.md runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "langgraph.md"


def test_the_quick_start_program_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    program = next(b for b in blocks if "asyncio.run(main())" in b)
    script = tmp_path / "quick_start.py"
    script.write_text(program, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-W", "error", str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    answer, counts = out.stdout.splitlines()
    assert re.fullmatch(r"(hit|inflight): # .+", answer), answer
    calls, prefetched, wasted = map(int, counts.split())
    assert calls == 1 and prefetched >= 1 and wasted == prefetched - 1
