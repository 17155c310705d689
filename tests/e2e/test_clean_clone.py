"""A clean clone on a new machine: the README's two commands, in a fresh folder and venv.

The clone is the files git would check out (tracked, plus new files not ignored: the change
under test), with no .env or store. `make run` must build its venv and open the demo world.
A truly cold venv costs 30-75 s of pip on this machine (measured; the README has the number),
so the test gives the clone's fresh venv one `.pth` line naming this checkout's site-packages:
`make run` still creates the venv and pip-installs the clone (building its editable wheel), but
finds the dependencies already there instead of installing them again. The test half runs the
clone's unit tests with the project's dev tools (`make test`'s own steps run in CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from demo_fixtures import REPO, Demo, demo

from agape_ops.settings import Settings

pytestmark = pytest.mark.e2e

__all__ = ["demo"]  # the fixture, used by name below

MAKE_RUN_DEADLINE_S = 300  # a cold install, on a busy 2-core machine


def clean_clone(into: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


def shell_env(demo: Demo) -> dict[str, str]:
    """A person's shell: their PATH, HOME and pip configuration, and no agape settings."""
    names = {name.upper() for name in Settings.model_fields} | {"LOG_LEVEL", "OPS_RUNBOOKS_DIR"}
    kept = {k: v for k, v in os.environ.items() if k not in names and not k.startswith("VIRTUAL")}
    kept.pop("PYTHONPATH", None)
    return {**kept, **{k: v for k, v in demo.env.items() if k != "HOME"}}


def lend_dependencies(venv: Path) -> Path:
    """Create ``venv`` with this checkout's installed packages visible; return its own
    site-packages (where `make run` installs)."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    own = venv / "lib" / version / "site-packages"
    (own / "_lent_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return own


@pytest.mark.timeout(MAKE_RUN_DEADLINE_S + 30)
def test_make_run_in_a_clean_clone_builds_its_venv_and_opens_the_demo(
    demo: Demo, tmp_path: Path
) -> None:
    clone = clean_clone(tmp_path / "agape-ops")
    assert not (clone / ".env").exists()
    own = lend_dependencies(clone / ".venv")

    result = subprocess.run(
        ["make", "run"],
        cwd=clone,
        env=shell_env(demo),
        input="",
        capture_output=True,
        text=True,
        timeout=MAKE_RUN_DEADLINE_S,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No backend is configured" in result.stdout
    assert "\nDEMO: a sandbox Agape shop" in result.stdout
    assert "agape-ops> " in result.stdout
    venv = clone / ".venv"
    assert (venv / "bin" / "agape-ops").exists()
    assert (venv / ".installed-run").exists()
    assert list(own.glob("agape_ops-*.dist-info"))  # the clone itself was installed
    assert not list(own.glob("pytest*"))  # the dev tools belong to `make test`
    assert not (clone / "agape-ops.db").exists()


@pytest.mark.timeout(MAKE_RUN_DEADLINE_S + 30)
def test_the_unit_tests_of_a_clean_clone_pass(demo: Demo, tmp_path: Path) -> None:
    clone = clean_clone(tmp_path / "agape-ops")
    env = {**shell_env(demo), "PYTHONPATH": str(clone)}  # the clone's code, not the checkout's

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=MAKE_RUN_DEADLINE_S,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary
    assert "failed" not in summary
    imported = subprocess.run(
        [sys.executable, "-c", "import agape_ops; print(agape_ops.__file__)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip() == str(clone / "agape_ops" / "__init__.py")
