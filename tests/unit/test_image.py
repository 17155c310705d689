"""The image installs pinned dependencies, serves, and checks its own health; compose agrees.

`constraints.txt` (written by `make lock`) pins the runtime closure of `pip install .`; the
Dockerfile installs with it. These tests keep it in step with `[project].dependencies`, and keep
the Dockerfile, `.dockerignore` and `docker-compose.yml` saying the same things.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DEPENDENCIES = [Requirement(text) for text in PROJECT["dependencies"]]
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)")
REGENERATE = "run `make lock` and commit constraints.txt"


def pins() -> dict[NormalizedName, Version]:
    """Return constraints.txt's pins; fail on any line that is not a comment or an exact pin."""
    found: dict[NormalizedName, Version] = {}
    for number, raw in enumerate(CONSTRAINTS.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN.fullmatch(line)
        assert match, f"constraints.txt:{number}: {line!r} is not an exact pin (name==version)"
        name = canonicalize_name(match[1])
        assert name not in found, f"constraints.txt:{number}: {name} is pinned twice"
        found[name] = Version(match[2])
    return found


def runtime_closure() -> set[NormalizedName]:
    """Return every distribution `pip install .` brings, read from the installed metadata."""
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    todo = list(DEPENDENCIES)
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        extras = requirement.extras or {""}
        for text in metadata.requires(requirement.name) or []:
            needed = Requirement(text)
            marker = needed.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(needed)
    return {name for name, _ in seen}


def dockerfile_instructions(keyword: str) -> list[str]:
    """Return the arguments of each `keyword` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return re.findall(rf"^{keyword}\s+(.+)$", joined, flags=re.MULTILINE)


def compose_service() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return dict(compose["services"]["agape-ops"])


@pytest.mark.parametrize("requirement", DEPENDENCIES, ids=str)
def test_every_runtime_dependency_is_pinned_within_its_range(requirement: Requirement) -> None:
    pinned = pins()
    name = canonicalize_name(requirement.name)
    assert name in pinned, f"{name} is not pinned: {REGENERATE}"
    assert requirement.specifier.contains(pinned[name], prereleases=True), (
        f"{name}=={pinned[name]} is outside {requirement.specifier}: {REGENERATE}"
    )


def test_every_package_the_dependencies_bring_is_pinned_and_nothing_else() -> None:
    closure = runtime_closure()
    pinned = set(pins())
    assert not closure - pinned, f"not pinned: {sorted(closure - pinned)}; {REGENERATE}"
    assert not pinned - closure, f"pinned but not needed: {sorted(pinned - closure)}; {REGENERATE}"
    assert canonicalize_name(PROJECT["name"]) not in pinned


def test_dockerfile_installs_with_the_constraints_and_serves() -> None:
    runs = dockerfile_instructions("RUN")
    assert "pip install --no-cache-dir -c constraints.txt ." in runs
    unpinned = [run for run in runs if "pip install" in run and "constraints.txt" not in run]
    assert not unpinned
    assert dockerfile_instructions("CMD") == ['["serve"]']
    assert dockerfile_instructions("EXPOSE") == ["3000"]
    assert dockerfile_instructions("FROM") == ["python:3.11-slim"]


def test_image_and_compose_check_health_with_the_same_probe() -> None:
    (healthcheck,) = dockerfile_instructions("HEALTHCHECK")
    image_probe = json.loads(healthcheck.split(" CMD ", 1)[1])
    compose_probe = compose_service()["healthcheck"]["test"]
    assert compose_probe == ["CMD", *image_probe]
    assert image_probe[:2] == ["python", "-c"], "python:3.11-slim has no curl"
    assert "'http://127.0.0.1:'" in image_probe[2]
    assert "/healthz" in image_probe[2]


def test_compose_runs_serve_on_its_own_store_without_a_terminal() -> None:
    service = compose_service()
    assert service["command"] == ["serve"]
    assert service["ports"] == ["${PORT:-3000}:3000"]
    assert service["environment"]["PORT"] == "3000"
    assert "@ops-store:5432/" in service["environment"]["OPS_DATABASE_URL"]
    assert not {"tty", "stdin_open"} & set(service)


def test_dockerignore_lets_in_only_what_the_dockerfile_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is left out unless let in"
    let_in = {line[1:] for line in lines if line.startswith("!")}
    copied: set[str] = set()
    for arguments in dockerfile_instructions("COPY"):
        copied.update(arguments.split()[:-1])
    assert copied == let_in
    assert "**/.env" in lines
    assert not {".env", ".git", ".venv", "tests"} & let_in
