"""What Prometheus's query answers mean: vectors, scalars and matrices turned into rows and figures.

Pure functions, no I/O: the adapter (``prometheus.py``) fetches, these translate. Every sample
is ``[<unix seconds>, "<value as a string>"]``; ``"NaN"`` (nothing was counted) and the
infinities cannot travel as JSON, so they become ``None`` in rows and figures and are named in
the summary. A label ``__name__`` becomes the column ``metric`` (templates cannot read dunder
names). An answer that is not the documented shape raises ``ShapeProblem``, which the adapter
reports with the response.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from agape_ops.engine.results import StepResult, table

#: Shown when a series' labels are many or a summary lists many series.
SHOWN_SERIES = 5
#: Relative change (between the first and the last quarter of a range) below which it is steady.
STEADY_WITHIN = 0.10
RANGE_FIGURES = ["first_value", "last_value", "min", "max", "change", "trend", "points"]


class ShapeProblem(ValueError):
    """An answer that is JSON but not the shape the Prometheus HTTP API documents."""


def sample_value(sample: object) -> tuple[float | str | None, str]:
    """Return a sample's value (None for NaN and the infinities) and how to say it."""
    if not isinstance(sample, list | tuple) or len(sample) != 2:
        raise ShapeProblem(f"a sample is not [time, value]: {str(sample)[:80]}")
    raw = sample[1]
    if not isinstance(raw, str):
        raise ShapeProblem(f"a sample value is not a string: {str(raw)[:80]}")
    try:
        value = float(raw)
    except ValueError as exc:
        raise ShapeProblem(f"a sample value is not a number: {raw[:80]}") from exc
    if math.isnan(value):
        return None, "NaN (nothing counted)"
    if math.isinf(value):
        return None, raw
    return value, number(value)


def number(value: float) -> str:
    """Say a sample's value with four significant digits (0.07125, 612400000 -> 6.124e+08)."""
    return f"{value:.4g}"


def labels_of(item: dict[str, Any]) -> dict[str, str]:
    """Return a series' labels, ``__name__`` as ``metric``."""
    metric = item.get("metric")
    if not isinstance(metric, dict):
        raise ShapeProblem("a series has no `metric` object of labels")
    return {
        ("metric" if name == "__name__" else str(name)): str(value)
        for name, value in metric.items()
    }


def selector(labels: dict[str, str]) -> str:
    """Write labels as PromQL does: ``name{a="1", b="2"}``, or ``{}`` for none."""
    name = labels.get("metric", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "metric")
    return f"{name}{{{inner}}}" if inner else name


def _columns(rows: list[dict[str, Any]], figures: list[str]) -> list[str]:
    names = sorted({k for row in rows for k in row if k not in figures})
    if "metric" in names:
        names.remove("metric")
        names.insert(0, "metric")
    return [*names, *figures]


def _series_rows(
    result: object, read: Callable[[dict[str, Any]], tuple[dict[str, Any], str]], key: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return one row per series (labels, then what ``read`` figures) and its words.

    Rows come largest ``key`` first, series with nothing counted last.
    """
    if not isinstance(result, list):
        raise ShapeProblem("`result` is not a list of series")
    pairs: list[tuple[dict[str, Any], str]] = []
    for item in result:
        if not isinstance(item, dict):
            raise ShapeProblem("a series is not an object")
        labels = labels_of(item)
        figures, said = read(item)
        pairs.append(({**labels, **figures}, f"{selector(labels)} {said}".strip()))
    ordered = sorted(
        pairs,
        key=lambda p: (p[0][key] is None, -(p[0][key] or 0.0), sorted(map(str, p[0].items()))),
    )
    return [row for row, _ in ordered], [words for _, words in ordered]


def _listed(parts: list[str]) -> str:
    shown = ", ".join(parts[:SHOWN_SERIES])
    extra = len(parts) - SHOWN_SERIES
    return f"{shown} (+{extra} more)" if extra > 0 else shown


def _warned(summary: str, warnings: list[str]) -> str:
    return f"{summary}; Prometheus warns: {'; '.join(warnings)}" if warnings else summary


def data_of(body: dict[str, Any]) -> tuple[str, Any, list[str]]:
    """Return ``(resultType, result, warnings)`` of a success answer."""
    data = body.get("data")
    if not isinstance(data, dict):
        raise ShapeProblem("no `data` object")
    result_type = data.get("resultType")
    if result_type not in ("vector", "matrix", "scalar", "string"):
        raise ShapeProblem(f"unknown resultType {str(result_type)[:40]!r}")
    warnings = body.get("warnings") or []
    said = [str(w) for w in warnings] if isinstance(warnings, list) else [str(warnings)]
    return str(result_type), data.get("result"), said


def instant_result(body: dict[str, Any]) -> StepResult:
    """State an instant query's answer: one row per series, and ``value`` when it is one number."""
    result_type, result, warnings = data_of(body)
    if result_type in ("scalar", "string"):
        value: float | str | None
        if result_type == "string":
            if not isinstance(result, list) or len(result) != 2:
                raise ShapeProblem("a string answer is not [time, value]")
            value = said = str(result[1])
        else:
            value, said = sample_value(result)
        return table(
            _warned(f"Prometheus: {said}", warnings),
            ["value"],
            [{"value": value}],
            values={
                "result_type": result_type,
                "series": 1,
                "value": value,
                "metric": None,
                "warnings": warnings,
            },
        )
    if result_type != "vector":
        raise ShapeProblem(f"an instant query answered resultType {result_type}")

    def instant(item: dict[str, Any]) -> tuple[dict[str, Any], str]:
        value, said = sample_value(item.get("value"))
        return {"value": value}, said

    rows, words = _series_rows(result, instant, "value")
    single = rows[0] if len(rows) == 1 else None
    if not rows:
        summary = "Prometheus: no series (nothing matches the query)"
    elif single is not None:
        summary = f"Prometheus: {words[0]}"
    else:
        summary = f"Prometheus: {len(rows)} series: {_listed(words)}"
    return table(
        _warned(summary, warnings),
        _columns(rows, ["value"]),
        rows,
        values={
            "result_type": "vector",
            "series": len(rows),
            "value": single["value"] if single else None,
            "metric": single.get("metric") if single else None,
            "warnings": warnings,
        },
    )


def trend_of(values: list[float]) -> str | None:
    """Say whether a series rose, fell or held: its last quarter's mean against its first's."""
    if len(values) < 2:
        return None
    quarter = max(1, len(values) // 4)
    early = sum(values[:quarter]) / quarter
    late = sum(values[-quarter:]) / quarter
    scale = max(abs(early), abs(late))
    if scale == 0 or abs(late - early) / scale <= STEADY_WITHIN:
        return "steady"
    return "rising" if late > early else "falling"


def series_figures(samples: object) -> dict[str, Any]:
    """Summarise one series of a range: first, last, min, max, change, trend and points."""
    if not isinstance(samples, list):
        raise ShapeProblem("a series of a range has no `values` list")
    numbers = [v for v, _ in map(sample_value, samples) if isinstance(v, float)]
    first = numbers[0] if numbers else None
    last = numbers[-1] if numbers else None
    return {
        "first_value": first,
        "last_value": last,
        "min": min(numbers) if numbers else None,
        "max": max(numbers) if numbers else None,
        "change": last - first if first is not None and last is not None else None,
        "trend": trend_of(numbers),
        "points": len(samples),
    }


def _figures_words(figures: dict[str, Any]) -> str:
    if figures["first_value"] is None:
        return f"nothing counted in {figures['points']} points"
    return (
        f"{number(figures['first_value'])} → {number(figures['last_value'])} "
        f"({figures['trend'] or 'one point'}; min {number(figures['min'])}, "
        f"max {number(figures['max'])})"
    )


def range_result(body: dict[str, Any], start: str, step: str) -> StepResult:
    """State a range query's answer: each series summarised; the figures for a single series."""
    result_type, result, warnings = data_of(body)
    if result_type != "matrix":
        raise ShapeProblem(f"a range query answered resultType {result_type}, not a matrix")

    def summarised(item: dict[str, Any]) -> tuple[dict[str, Any], str]:
        figures = series_figures(item.get("values"))
        return figures, _figures_words(figures)

    rows, words = _series_rows(result, summarised, "last_value")
    single = rows[0] if len(rows) == 1 else None
    window = f"over the last {start}, every {step}"
    if not rows:
        summary = f"Prometheus: no series {window} (nothing matches the query)"
    elif single is not None:
        summary = f"Prometheus {window}: {words[0]}"
    else:
        summary = f"Prometheus {window}: {len(rows)} series: {_listed(words)}"
    figures = {name: single[name] if single else None for name in RANGE_FIGURES}
    return table(
        _warned(summary, warnings),
        _columns(rows, RANGE_FIGURES),
        rows,
        values={
            "result_type": "matrix",
            "series": len(rows),
            "value": figures["last_value"],
            "metric": single.get("metric") if single else None,
            "warnings": warnings,
            **figures,
        },
    )
