"""Bytes that are not UTF-8 on the console's stdin are one refused line, not the end of it.

A strict UTF-8 stdin raised UnicodeDecodeError on the first such byte and the console exited.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AGAPE = str(Path(sys.executable).with_name("agape-ops"))


def test_undecodable_bytes_are_refused_and_the_session_goes_on(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "OPS_DATABASE_URL": f"sqlite:///{tmp_path}/ops.db",
        "RUNBOOKS_DIR": str(REPO / "runbooks"),
        "OPS_TEAM_FILE": str(REPO / "team.yaml"),
    }
    done = subprocess.run(
        [AGAPE, "console"],
        input=b"\xff\xfe\x80 status\nrunbooks\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    out = done.stdout.decode("utf-8", "replace")
    assert "Traceback" not in done.stderr.decode("utf-8", "replace")
    assert "\ufffd\ufffd\ufffd status" in out  # the line, read with its bytes replaced
    assert "Inventory Oversell" in out  # the next command still ran
    assert done.returncode == 1  # a piped session with a refused line says so
