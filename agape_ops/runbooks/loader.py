"""Read runbook YAML into models, with every error located by file, line and column.

PyYAML's composer keeps each node's position; we build plain Python values from the node tree
while remembering where each value came from, so a pydantic error's location (``detection.2.when``)
maps back to the line an engineer must edit.
"""

from __future__ import annotations

import difflib
import functools
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agape_ops.errors import Problem, RunbookError, RunbookValidationError
from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.team import Team
from agape_ops.runbooks.yaml_words import explain

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


#: The most values one document may expand to: aliases can repeat a subtree many times over.
MAX_VALUES = 100_000
_TOO_DEEP = "YAML nests too deeply to read; write the runbook plainly"
_UNREADABLE = object()  # what _Builder.scalar returns for a value its tag cannot make


@dataclass
class Located:
    """A parsed document and where each of its values and keys sits in the file.

    A value on its key's line is located where it starts; a block mapping or list, which starts
    on a later line, is located at its key, the line an engineer looks for.
    """

    path: str
    data: Any
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    #: Each scalar's own start (line, column) and style ("" plain, "|" literal, ...).
    scalars: dict[Loc, tuple[int, int, str]] = field(default_factory=dict)
    #: Where each mapping key itself is written, for problems about the key (a misspelling).
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    text: str = ""

    def where(self, loc: Iterable[str | int]) -> tuple[int, int]:
        """Return (line, column) of the deepest part of ``loc`` that the file contains."""
        parts = tuple(loc)
        while parts:
            if parts in self.positions:
                return self.positions[parts]
            parts = parts[:-1]
        return self.positions.get((), (1, 1))

    def problem(
        self, loc: Iterable[str | int], message: str, *, offset: int | None = None
    ) -> Problem:
        """Return a Problem at ``loc``, or at ``offset`` inside that string value when known."""
        parts = tuple(loc)
        inside = self.inside(parts, offset) if offset is not None else None
        line, column = inside or self.where(parts)
        return Problem(self.path, line, column, message)

    def inside(self, loc: Loc, offset: int) -> tuple[int, int] | None:
        """Return the file's (line, column) of character ``offset`` of the string at ``loc``.

        Exact for a literal block (``|``), whose lines are the file's lines less their
        indentation, and for a one-line plain or quoted value; None for folded text.
        """
        value = self.data
        for part in loc:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        if loc not in self.scalars or not isinstance(value, str) or offset > len(value):
            return None
        line, column, style = self.scalars[loc]
        row = value.count("\n", 0, offset)
        at = offset - (value.rfind("\n", 0, offset) + 1)
        if style == "|":
            lines = self.text.splitlines()
            body = lines[line : line + value.rstrip("\n").count("\n") + 1]
            indent = min(
                (len(text) - len(text.lstrip(" ")) for text in body if text.strip()), default=0
            )
            return line + 1 + row, indent + at + 1
        if row == 0 and style in ("", "'", '"'):
            return line, column + at + (1 if style else 0)
        return None


def parse_yaml(text: str, path: str) -> Located:
    """Parse one YAML document, keeping positions; raise RunbookValidationError on bad YAML."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line, column, message = explain(exc)
        raise RunbookValidationError([Problem(path, line, column, message)], path=path) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else exc.character
        message = f"YAML: character {char} is not allowed ({exc.reason})"
        raise RunbookValidationError([Problem(path, line, column, message)], path=path) from exc
    except yaml.YAMLError as exc:
        raise RunbookValidationError([Problem(path, 1, 1, f"YAML: {exc}")], path=path) from exc
    except RecursionError as exc:
        raise RunbookValidationError([Problem(path, 1, 1, _TOO_DEEP)], path=path) from exc
    located = Located(path=path, data=None, text=text)
    if node is None:
        located.data = {}
        return located
    builder = _Builder(located)
    try:
        located.data = builder.build(node, ())
    except RecursionError as exc:
        raise RunbookValidationError([Problem(path, 1, 1, _TOO_DEEP)], path=path) from exc
    if builder.problems:
        raise RunbookValidationError(builder.problems, path=path)
    return located


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Build plain values from a node tree, recording positions and collecting problems."""

    def __init__(self, located: Located) -> None:
        self.located = located
        self.problems: list[Problem] = []
        self.constructor = yaml.SafeLoader("")
        self.open: set[int] = set()  # collections being built: an alias back into one loops
        self.count = 0

    def add(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(self.located.path, *_mark(node), message))

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.located.positions[loc] = _mark(node)
        self.count += 1
        if self.count > MAX_VALUES:
            if self.count == MAX_VALUES + 1:
                self.add(node, f"the document expands to more than {MAX_VALUES} values (aliases?)")
            return None
        if isinstance(node, yaml.ScalarNode):
            self.located.scalars[loc] = (*_mark(node), node.style or "")
            value = self.scalar(node)
            return None if value is _UNREADABLE else value
        if id(node) in self.open:
            self.add(node, "an alias refers to a value that contains it")
            return None
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, loc)
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.add(key_node, "a key must be a plain word, not a list or a mapping")
                continue
            key = self.scalar(key_node)
            if key is _UNREADABLE:
                continue
            if key in result:
                self.add(key_node, f"duplicate key {key!r} in the same mapping")
                continue
            child = (*loc, key)
            self.located.keys[child] = _mark(key_node)
            result[key] = self.build(value_node, child)
            if value_node.start_mark.line > key_node.start_mark.line:
                self.located.positions[child] = _mark(key_node)
        return result

    def scalar(self, node: yaml.ScalarNode) -> Any:
        """Return the scalar's value, or _UNREADABLE (reported) when its tag cannot make one."""
        try:
            return self.constructor.construct_object(node)
        except yaml.MarkedYAMLError as exc:
            self.add(node, f"cannot read this value: {exc.problem or 'bad tag'}")
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            # PyYAML's constructors fail in these ways on values their tag cannot hold
            # (``!!int ''`` indexes an empty string, ``!!timestamp x`` reads a failed match).
            tag = node.tag.rsplit(":", 1)[-1]
            detail = f" ({exc})" if isinstance(exc, (ValueError, TypeError, OverflowError)) else ""
            self.add(node, f"cannot read {node.value!r} as {tag}{detail}")
        return _UNREADABLE


@functools.cache
def known_keys(model: type[BaseModel]) -> frozenset[str]:
    """Return every key (field name or alias) of ``model`` and of the models inside it."""
    keys: set[str] = set()
    seen: set[type[BaseModel]] = set()
    pending: list[Any] = [model]
    while pending:
        kind = pending.pop()
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            if kind in seen:
                continue
            seen.add(kind)
            for name, info in kind.model_fields.items():
                keys.add(info.alias or name)
                pending.append(info.annotation)
        else:
            pending.extend(typing.get_args(kind))
    return frozenset(keys)


def _message(error: Any, keys: frozenset[str] = frozenset()) -> str:
    kind = error.get("type", "")
    loc = error.get("loc", ())
    name = ".".join(str(p) for p in loc if not str(p).startswith("function-"))
    msg = str(error.get("msg", "invalid"))
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), sorted(keys), n=1, cutoff=0.7)
        if close:
            return f"unknown key {loc[-1]!r}: did you mean {close[0]!r}?"
        return f"unknown key {loc[-1]!r} (check the spelling; see `agape-ops schema`)"
    if kind == "missing":
        return f"missing required key {loc[-1]!r}" + (
            f" in {'.'.join(str(p) for p in loc[:-1])}" if len(loc) > 1 else ""
        )
    msg = msg.removeprefix("Value error, ")
    return f"{name}: {msg}" if name else msg


def validate(located: Located, model: type[M]) -> M:
    """Validate parsed data against ``model``; raise with one located Problem per error."""
    try:
        return model.model_validate(located.data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # Drop union/tag segments pydantic inserts, keeping real keys and indexes.
            loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
            message = _message(error, known_keys(model))
            if error.get("type") == "extra_forbidden" and loc in located.keys:
                problems.append(Problem(located.path, *located.keys[loc], message))
            else:
                problems.append(located.problem(loc, message))
        raise RunbookValidationError(_dedupe(problems), path=located.path) from exc


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


def _read(path: Path, what: str) -> str:
    """Return a file's text, or raise RunbookError saying in words why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if what == "runbook":
            message = "no such runbook file or folder (RUNBOOKS_DIR names the runbooks folder)"
        else:
            message = "no such team file (OPS_TEAM_FILE names it)"
        raise RunbookError(message, path=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise RunbookError(f"cannot read the {what} ({reason})", path=str(path)) from exc


def load_runbook_file(path: Path) -> tuple[Runbook, Located]:
    """Load and validate one runbook file; its ``id`` must equal the file name."""
    text = _read(path, "runbook")
    located = parse_yaml(text, str(path))
    if not isinstance(located.data, dict):
        raise RunbookValidationError(
            [located.problem((), "a runbook is a mapping (id:, title:, ...)")], path=str(path)
        )
    runbook = validate(located, Runbook)
    if runbook.id != path.stem:
        raise RunbookValidationError(
            [located.problem(("id",), f"id {runbook.id!r} must equal the file name {path.stem!r}")],
            path=str(path),
        )
    return runbook, located


def load_team_file(path: Path) -> Team:
    """Load and validate the team file (responders, approvers, escalation, contacts, dashboards)."""
    located = parse_yaml(_read(path, "team file"), str(path))
    return validate(located, Team)


def runbook_files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories into their ``*.yaml`` / ``*.yml`` files, sorted, files kept as given."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            files.append(path)
    return files
