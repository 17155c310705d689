"""Say a YAML syntax error in plain words, at the line to fix.

PyYAML reports what its parser expected ("expected <block end>, but found '?'"), which is true
and of no help to someone editing a runbook. The common mistakes (an indent off by a space, a
colon inside a value, a tab, an unclosed quote or bracket, a key without its colon) each get
a sentence saying what to change, placed on the line where the change is made.
"""

from __future__ import annotations

import yaml


def _line_of(mark: yaml.Mark | None) -> tuple[int, int] | None:
    return (mark.line + 1, mark.column + 1) if mark is not None else None


def explain(exc: yaml.MarkedYAMLError) -> tuple[int, int, str]:
    """Return (line, column, message) for a YAML syntax error."""
    problem = exc.problem or "malformed YAML"
    context = exc.context or ""
    at = _line_of(exc.problem_mark) or _line_of(exc.context_mark) or (1, 1)
    opened = _line_of(exc.context_mark)
    if problem.startswith("expected <block end>"):
        since = f" (the block starting on line {opened[0]})" if opened else ""
        return (
            *at,
            "YAML syntax: this line is indented differently from the lines above it"
            f"{since}; indent it exactly like the keys or list items it belongs with",
        )
    if problem == "mapping values are not allowed here":
        return (
            *at,
            "YAML syntax: a ':' where no key can start; if it is part of a value, put the value "
            "in quotes, otherwise check this line's indentation",
        )
    if "'\\t'" in problem or "\\t" in problem:
        return (*at, "YAML syntax: a tab character; YAML indents with spaces only")
    if "quoted scalar" in context and opened:
        return (*opened, "YAML syntax: the quote opened on this line is never closed")
    if "flow sequence" in context and opened:
        return (*opened, "YAML syntax: the [ opened on this line is never closed with ]")
    if "flow mapping" in context and opened:
        return (*opened, "YAML syntax: the { opened on this line is never closed with }")
    if problem == "could not find expected ':'" and opened:
        return (*opened, "YAML syntax: this line has a key without its ':' (write `key: value`)")
    if problem.startswith("found undefined alias"):
        name = problem.rsplit(" ", 1)[-1]
        return (*at, f"YAML syntax: alias *{name.strip(chr(39))} refers to no &anchor above it")
    return (*at, f"YAML syntax: {problem}" + (f" ({context})" if context else ""))
