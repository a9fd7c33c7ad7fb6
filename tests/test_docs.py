"""The Python sweep example of docs/sweeps.md runs as a script (its workers are spawned and
re-import it), and the same script without the `if __name__ == "__main__":` guard stops at
once with a message that says to add it."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs" / "sweeps.md"


def _python_api_snippet() -> str:
    section = DOCS.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _run(tmp_path, code: str):
    script = tmp_path / "sweep_example.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)


def test_documented_python_sweep_runs_as_a_script(tmp_path):
    res = _run(tmp_path, _python_api_snippet())
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert "8 computed" in lines[0] and "0 failed" in lines[0]
    assert lines[1] == "True 8 0 0"
    assert lines[2] == str([float(x * x) for x in range(8)]) or \
        lines[2] == str([x * x for x in range(8)])
    for name in ("small", "large"):
        assert (tmp_path / f"out-{name}" / "results").is_dir()


def test_script_without_the_main_guard_is_refused_with_the_fix(tmp_path):
    code = _python_api_snippet()
    head, body = code.split('if __name__ == "__main__":', 1)
    unguarded = head + textwrap.dedent(body.split("\n", 1)[1])
    res = _run(tmp_path, unguarded)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert "SweepError" in last and 'if __name__ == "__main__":' in last, res.stderr
    assert "another sweep driver" not in res.stderr and "Nanny" not in res.stderr
