"""Read what every alert's words share: Slack mrkdwn, status prefixes, figures, key=value.

Pure string functions used by the per-source parsers and by the fingerprint, so a title means
the same thing wherever it is read.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from agape_ops.alerts.model import AlertStatus

_LINK = re.compile(r"<([^<>|\n]*)(?:\|([^<>\n]*))?>")
_CODE_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)
_CODE = re.compile(r"`([^`\n]+)`")
_STRONG = re.compile(r"\*\*(\S(?:[^*\n]*?\S)?)\*\*")
_MARKS = tuple(
    re.compile(rf"(?<![\w{m}]){m}(\S(?:[^{m}\n]*?\S)?){m}(?![\w{m}])") for m in (r"\*", "_", "~")
)
_EMOJI = re.compile(r"^(?:\s*:[a-z0-9_+'-]+:)+\s*")

#: ``[FIRING:2] rest`` (Alertmanager, Grafana) and Grafana's legacy ``[Alerting]`` / ``[OK]``.
BRACKET = re.compile(
    r"^\s*\[(?P<state>FIRING|RESOLVED|ALERTING|PENDING|NO ?DATA|OK)(?::\s*(?P<count>\d+))?\]"
    r"\s*(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
#: ``Triggered: <monitor>`` and its kin (Datadog), ``Monitor is DOWN:`` (UptimeRobot).
_WORD_PREFIX = re.compile(
    r"^\s*(?:\[P\d\]\s*)?\[?(?P<word>re-?triggered|triggered|recovered(?: from \w+)?|"
    r"re-?warned|warn(?:ing)?|no data|re-?notify|renotify|alert|firing|resolved|"
    r"monitor is (?:down|up))(?:\s+on\s+\{[^}]*\})?\]?\s*:\s*",
    re.IGNORECASE,
)
_RESOLVED_WORDS = ("resolved", "ok", "recovered", "monitor is up")

_RATE_NAME = (
    r"(?<![A-Za-z])(?:5xx|error|err)s?(?:[ _-]+(?:errors?|responses?))?[ _-]*(?:rate|ratio)s?\b"
)
#: ``error rate for checkout-api is 7.2%``: a percentage later in the same clause.
_RATE_PERCENT = re.compile(
    _RATE_NAME + r"(?:[^\n%;,!?.]|\.(?!\s)){0,40}?(?<![\w.-])(\d+(?:\.\d+)?)\s*(?:%|percent\b)",
    re.IGNORECASE,
)
#: ``error_rate=0.034``, ``error rate is 7``: a bare figure right after the name.
_RATE_BARE = re.compile(
    _RATE_NAME + r"\s*(?:[:=]|is|was|of|at|now)?\s*(\d+(?:\.\d+)?)(?!\w|\.\d)",
    re.IGNORECASE,
)
_URL = re.compile(r"(?<![\w+.-])[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_TOKEN = re.compile(r"(?<![\w.-])([A-Za-z_][\w.-]*)=(\"[^\"]*\"|'[^']*'|[^\s,;{}\"'()\[\]]+)")


def _link(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if target[:1] in "@#":
        return target[0] + label.lstrip(target[0]) if label else target
    if target.startswith("!"):
        return label or "@" + target[1:].split("^", 1)[0]
    return label or target.removeprefix("mailto:")


def plain(mrkdwn: str) -> str:
    """Return Slack mrkdwn as plain text: links to their labels, markers off, entities decoded."""
    if not mrkdwn:
        return ""
    text = _LINK.sub(_link, mrkdwn)
    text = _CODE_BLOCK.sub(lambda m: m.group(1).strip("\n"), text)
    text = _CODE.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    for mark in _MARKS:
        text = mark.sub(r"\1", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text.strip()


def strip_emoji(title: str) -> str:
    """Return ``title`` without the emoji shortcodes it starts with (``:red_circle: X`` -> X)."""
    return _EMOJI.sub("", title).strip()


def status_of(title: str) -> AlertStatus | None:
    """Return the status a headline's prefix states, or None when it states none."""
    bracket = BRACKET.match(title)
    if bracket:
        state = bracket.group("state").lower()
    else:
        prefix = _WORD_PREFIX.match(title)
        if prefix is None:
            return None
        state = prefix.group("word").lower()
    if state.startswith(_RESOLVED_WORDS):
        return AlertStatus.RESOLVED
    return AlertStatus.FIRING


def strip_status(title: str) -> str:
    """Return ``title`` without its emoji and status prefixes (``[FIRING:2]``, ``Recovered:``)."""
    previous = None
    title = strip_emoji(title)
    while previous != title:
        previous = title
        bracket = BRACKET.match(title)
        if bracket:
            title = bracket.group("rest")
        title = strip_emoji(_WORD_PREFIX.sub("", title, count=1))
    return title.strip()


def number(raw: str) -> int | float | None:
    """Return a figure: ``7.2%`` -> 0.072 (a ratio), ``3`` -> 3, ``2.5`` -> 2.5; else None."""
    text = raw.strip().replace(",", "")
    percent = text.endswith("%")
    try:
        figure = Decimal(text.rstrip("%").strip())
    except InvalidOperation:
        return None
    if not figure.is_finite():
        return None
    if percent:
        return float(figure / 100)
    if figure == figure.to_integral_value() and not re.search(r"[.eE]", text):
        return int(figure)
    return float(figure)


def add_error_rate(values: dict[str, Any], text: str) -> None:
    """Set ``values["error_rate"]`` (a ratio) from prose like ``5xx rate is 3.4%``, if absent."""
    if "error_rate" in values:
        return
    percent = _RATE_PERCENT.search(text)
    match = percent or _RATE_BARE.search(text)
    if match is None:
        return
    figure = Decimal(match.group(1))
    if percent or figure > 1:
        figure /= 100
    values["error_rate"] = float(figure)


def tokens(text: str) -> tuple[dict[str, str], dict[str, int | float]]:
    """Return the ``key=value`` tokens of ``text`` as labels, and the numeric ones as values."""
    labels: dict[str, str] = {}
    values: dict[str, int | float] = {}
    for key, raw in _TOKEN.findall(_URL.sub(" ", text)):
        value = raw[1:-1] if raw[:1] in "\"'" else raw.rstrip(".:")
        if not value:
            continue
        labels[key] = value
        figure = number(value)
        if figure is not None:
            values[key] = figure
    return labels, values
