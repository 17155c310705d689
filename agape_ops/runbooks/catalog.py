"""The catalog: every runbook that loads and lints, and the problems of those that do not.

It sits above both the loader and the linter (the linter reads what the loader located), so
neither imports the other's caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agape_ops.errors import Problem, RunbookError, RunbookValidationError
from agape_ops.runbooks.lint import lint_runbook
from agape_ops.runbooks.loader import Located, load_runbook_file, runbook_files
from agape_ops.runbooks.model import Runbook


@dataclass
class Catalog:
    """The runbooks that loaded, and the problems of those that did not."""

    runbooks: dict[str, Runbook] = field(default_factory=dict)
    sources: dict[str, Located] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def get(self, runbook_id: str) -> Runbook | None:
        return self.runbooks.get(runbook_id)

    def __iter__(self) -> Any:
        return iter(sorted(self.runbooks.values(), key=lambda r: r.id))

    def __len__(self) -> int:
        return len(self.runbooks)


def load_catalog(paths: Iterable[Path], *, lint: bool = True) -> Catalog:
    """Load every valid runbook under ``paths``; collect the problems of invalid ones.

    A runbook with schema errors, or (when ``lint``) semantic errors, is left out and its
    problems reported; the others load. Nothing here raises for a bad runbook.
    """
    catalog = Catalog()
    for path in runbook_files(paths):
        try:
            runbook, located = load_runbook_file(path)
        except RunbookValidationError as exc:
            catalog.problems.extend(exc.problems)
            continue
        except RunbookError as exc:
            catalog.problems.append(Problem(str(path), 1, 1, exc.message))
            continue
        problems = lint_runbook(runbook, located) if lint else []
        if problems:
            catalog.problems.extend(problems)
            continue
        if runbook.id in catalog.runbooks:
            catalog.problems.append(
                located.problem(("id",), f"runbook id {runbook.id!r} is loaded twice")
            )
            continue
        catalog.runbooks[runbook.id] = runbook
        catalog.sources[runbook.id] = located
    return catalog
