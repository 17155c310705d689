"""Read one integration's Slack message into an Alert: a parser per monitoring source.

Each parser takes a :class:`SlackMessage` (the parts of a message event, text still in Slack
mrkdwn) and returns an Alert without channel or ts; :func:`parse` picks the parser from the
sender's name, then from the shape of the headline. The shared readings of prose (status
words, ``key=value`` tokens, error rates) live in :mod:`agape_ops.alerts.prose`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from agape_ops.alerts.model import Alert, AlertStatus
from agape_ops.alerts.prose import (
    BRACKET,
    add_error_rate,
    number,
    plain,
    status_of,
    strip_emoji,
    tokens,
)

#: Attachment colour Alertmanager's default template gives a resolved group.
RESOLVED_COLOUR = "2eb886"


@dataclass(frozen=True)
class Attachment:
    """One legacy attachment, text as sent (mrkdwn)."""

    title: str = ""
    text: str = ""
    pretext: str = ""
    fallback: str = ""
    footer: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    colour: str = ""
    link: str | None = None


@dataclass(frozen=True)
class Block:
    """One Block Kit block reduced to its kind and its text (mrkdwn as sent)."""

    kind: str
    text: str


@dataclass(frozen=True)
class SlackMessage:
    """What the parsers read of a message event; ``sender`` is empty for a person."""

    sender: str = ""
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    blocks: tuple[Block, ...] = ()
    actions: tuple[str, ...] = ()
    from_bot: bool = False

    def is_empty(self) -> bool:
        """Return True when the message carries no text anywhere."""
        title, body, _ = compose(self)
        return not (title or body)


def compose(msg: SlackMessage) -> tuple[str, str, str | None]:
    """Return (title, body, link): the first attachment title, else the first line of text."""
    title = ""
    link: str | None = None
    lines: list[str] = []
    top = plain(msg.text)
    for att in msg.attachments:
        lines.append(plain(att.pretext))
        if att.title and not title:
            title, link = plain(att.title), att.link
        else:
            lines.append(plain(att.title))
        lines.append(plain(att.text))
        lines.extend(f"{plain(k)}: {plain(v)}" if k else plain(v) for k, v in att.fields)
    lines.extend(plain(b.text) for b in msg.blocks)
    if top and top != title:
        lines.insert(0, top)
    body = "\n".join(line for line in lines if line).strip()
    if not title:
        first, _, rest = body.partition("\n")
        title, body = first.strip(), rest.strip()
    if not (title or body):
        fallback = next((plain(a.fallback) for a in msg.attachments if a.fallback), "")
        title = fallback.split(" | ", 1)[0]
    title = strip_emoji(title)
    return title, re.sub(r"\n{3,}", "\n\n", body), link


def _section(body: str, heading: str) -> dict[str, str]:
    """Return the ``- key = value`` lines under ``heading:`` (Grafana's Labels, Annotations)."""
    found: dict[str, str] = {}
    inside = False
    for line in body.splitlines():
        if re.fullmatch(rf"\s*{heading}:\s*", line, re.IGNORECASE):
            if found:
                break  # a second alert of the group: the first one's labels name the group
            inside = True
            continue
        if inside:
            item = re.fullmatch(r"\s*[-•*]\s*([\w.:/-]+)\s*=\s*(.*?)\s*", line)
            if item is None:
                inside = False
                continue
            found[item.group(1)] = item.group(2)
    return found


def _bracket_alertname(title: str) -> str | None:
    match = BRACKET.match(title)
    if match is None:
        return None
    words = match.group("rest").split()
    if words and re.fullmatch(r"[A-Za-z_:][\w:.-]*", words[0]):
        return words[0]
    return None


def _finish(alert: Alert) -> Alert:
    add_error_rate(alert.values, f"{alert.title}\n{alert.text}")
    return alert


def parse_alertmanager(msg: SlackMessage) -> Alert:
    """Read Alertmanager's default template: ``[FIRING:n] <alertname> <values...> (<values>)``."""
    title, body, link = compose(msg)
    status = status_of(title)
    if status is None:
        resolved = any(a.colour.lower().lstrip("#") == RESOLVED_COLOUR for a in msg.attachments)
        status = AlertStatus.RESOLVED if resolved else AlertStatus.FIRING
    labels = _section(body, "Labels")
    name = _bracket_alertname(title)
    if name and "alertname" not in labels:
        labels["alertname"] = name
    alert = Alert(
        source="alertmanager", title=title, text=body, labels=labels, status=status, link=link
    )
    return _finish(alert)


_GRAFANA_HEADER = re.compile(r"\A\s*(firing|resolved)\s*\n", re.IGNORECASE)
_GRAFANA_VALUE = re.compile(r"^\s*Values?:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_GRAFANA_VAR = re.compile(r"var='(\w+)'(?:(?!var=)[^\]])*?value=([-+\d.eE]+)")


def _grafana_values(body: str) -> dict[str, float]:
    match = _GRAFANA_VALUE.search(body)
    if match is None:
        return {}
    line = match.group(1)
    pairs = _GRAFANA_VAR.findall(line) or re.findall(r"([A-Za-z_]\w*)=([-+\d.eE]+)", line)
    values: dict[str, float] = {}
    for key, raw in pairs:
        figure = number(raw)
        if figure is not None:
            values[key] = float(figure)
    return values


def parse_grafana(msg: SlackMessage) -> Alert:
    """Read Grafana's contact point: bracket title; Value, Labels and Annotations in the text."""
    title, body, link = compose(msg)
    header = _GRAFANA_HEADER.match(body)
    status = status_of(title) or (status_of(f"[{header.group(1)}]") if header else None)
    if header:
        body = body[header.end() :].lstrip()
    labels = _section(body, "Labels")
    name = _bracket_alertname(title)
    if name and "alertname" not in labels:
        labels["alertname"] = name
    values: dict[str, object] = dict(_grafana_values(body))
    for key, raw in _section(body, "Annotations").items():
        figure = number(raw)
        if figure is not None and key not in values:
            values[key] = figure
    alert = Alert(
        source="grafana",
        title=title,
        text=body,
        labels=labels,
        values=values,
        status=status or AlertStatus.FIRING,
        link=link,
    )
    return _finish(alert)


_DATADOG_TITLE = re.compile(
    r"^\s*(?:\[P\d\]\s*)?\[?(?:re-?triggered|triggered|recovered|re-?warned|warn|no data)\b",
    re.IGNORECASE,
)
_DATADOG_SCOPE = re.compile(r"\bon\s+\{([^{}]*)\}")
_THRESHOLD = re.compile(r"threshold\s*(?:of|is|:|=)?\s*(\d+(?:\.\d+)?)\s*(%)?", re.IGNORECASE)


def _scope_labels(scope: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in re.split(r"[,\s]+", scope):
        key, sep, value = part.partition(":")
        if sep and key and value:
            labels[key] = value
    return labels


def parse_datadog(msg: SlackMessage) -> Alert:
    """Read a Datadog monitor: ``Triggered: <monitor>`` / ``Recovered: ...``; scope as labels."""
    title, body, link = compose(msg)
    body = "\n".join(ln for ln in body.splitlines() if not re.fullmatch(r"\s*(@\S+\s*)+", ln))
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    labels: dict[str, str] = {}
    if link:
        for group in parse_qs(urlsplit(link).query).get("group", []):
            labels.update(_scope_labels(group))
    scope = _DATADOG_SCOPE.search(title)
    if scope:
        labels.update(_scope_labels(scope.group(1)))
    values: dict[str, object] = {}
    threshold = _THRESHOLD.search(body)
    if threshold:
        values["threshold"] = number(threshold.group(1) + (threshold.group(2) or ""))
    alert = Alert(
        source="datadog",
        title=title,
        text=body,
        labels=labels,
        values=values,
        status=status_of(title) or AlertStatus.FIRING,
        link=link,
    )
    return _finish(alert)


_SENTRY_TAG = re.compile(r"(?<![\w.-])([\w.-]+):\s*`([^`]*)`")
_SENTRY_CONTEXT_KEYS = {"project": "project", "alert": "rule", "short id": "issue"}
_LINK_TARGET = re.compile(r"<(https?://[^<>|]+)\|")


def parse_sentry(msg: SlackMessage) -> Alert:
    """Read a Sentry issue alert: linked title block, tags, project context, resolution state."""
    sections = [b for b in msg.blocks if b.text]
    if not sections:
        title, body, link = compose(msg)
        return _finish(Alert(source="sentry", title=title, text=body, link=link))
    head = sections[0].text
    target = _LINK_TARGET.search(head)
    title = strip_emoji(plain(head).splitlines()[0] if plain(head) else "")
    labels: dict[str, str] = {}
    state = ""
    lines = [plain(msg.text)]
    for block in sections[1:]:
        text = plain(block.text)
        tags = _SENTRY_TAG.findall(block.text)
        if block.kind == "section" and tags:
            labels.update({k: v.strip() for k, v in tags})
        for part in re.split(r"\s{2,}", text):
            key, sep, value = part.partition(":")
            key = key.strip().lower()
            if sep and key in _SENTRY_CONTEXT_KEYS and value.strip():
                labels[_SENTRY_CONTEXT_KEYS[key]] = value.strip()
            elif sep and key == "state":
                state = value.strip().lower()
        lines.append(text)
    resolved = state.startswith("resolved") or "unresolved" in msg.actions
    alert = Alert(
        source="sentry",
        title=title,
        text="\n".join(line for line in lines if line),
        labels=labels,
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        link=target.group(1) if target else None,
    )
    return _finish(alert)


_UPTIME = re.compile(r"Monitor is (?P<state>DOWN|UP)[ \t]*:(?P<line>[^\n]*)", re.IGNORECASE)


@dataclass(frozen=True)
class _Uptime:
    """An UptimeRobot headline: ``Monitor is DOWN: <name> ( <url> ) - <rest>``."""

    state: str
    name: str
    url: str | None
    rest: str
    end: int


def _uptime(text: str) -> _Uptime | None:
    """Find and split an UptimeRobot headline, in linear time whatever the text holds.

    The name runs to the url's parenthesis or, without one, to the first `` - ``: monitor
    names such as ``agape-backend`` keep their hyphens.
    """
    for match in _UPTIME.finditer(text):
        line = match.group("line")
        url: str | None = None
        name, paren, after = line.partition("(")
        if paren:
            inside, closed, tail = after.partition(")")
            if closed and len(inside.split()) == 1:
                url, after = inside.strip(), tail
            else:
                after = paren + after
        else:
            name, _, after = line.partition(" - ")
        rest = after.strip()
        if name.strip():
            return _Uptime(
                state=match.group("state").upper(),
                name=name.strip(),
                url=url,
                rest=rest[1:].strip() if rest.startswith("-") else rest,
                end=match.end(),
            )
    return None


def parse_uptimerobot(msg: SlackMessage) -> Alert:
    """Read UptimeRobot: ``Monitor is DOWN: <name> ( <url> ) - Reason: ...`` or ``... is UP``."""
    title, body, link = compose(msg)
    whole = f"{title}\n{body}".strip()
    match = _uptime(whole)
    labels: dict[str, str] = {}
    values: dict[str, object] = {}
    if match:
        labels["monitor"] = match.name
        if match.url:
            labels["url"] = match.url
        title = f"Monitor is {match.state}: {match.name}"
        rest = [match.url or "", match.rest, whole[match.end :].strip()]
        body = "\n".join(part for part in rest if part)
    code = re.search(r"\bHTTP\s+(\d{3})\b", whole)
    if code:
        values["status_code"] = int(code.group(1))
    status = status_of(title)
    if status is None:
        down = re.search(r"\b(is|went)\s+down\b", whole, re.IGNORECASE)
        status = AlertStatus.FIRING if down else AlertStatus.RESOLVED
    alert = Alert(
        source="uptimerobot",
        title=title,
        text=body,
        labels=labels,
        values=values,
        status=status,
        link=link,
    )
    return _finish(alert)


def parse_text(msg: SlackMessage, *, source: str = "text") -> Alert:
    """Read prose: first line as title; ``key=value`` tokens as labels; status words; rates."""
    title, body, link = compose(msg)
    labels, values = tokens(f"{title}\n{body}")
    name = _bracket_alertname(title)
    if name and "alertname" not in labels:
        labels["alertname"] = name
    alert = Alert(
        source=source,
        title=title,
        text=body,
        labels=labels,
        values=dict(values),
        status=status_of(title) or AlertStatus.FIRING,
        link=link,
    )
    return _finish(alert)


Parser = Callable[[SlackMessage], Alert]

#: Integrations known by the name they post under (username or bot profile name).
BY_SENDER: tuple[tuple[str, Parser], ...] = (
    ("alertmanager", parse_alertmanager),
    ("prometheus", parse_alertmanager),
    ("grafana", parse_grafana),
    ("datadog", parse_datadog),
    ("sentry", parse_sentry),
    ("uptimerobot", parse_uptimerobot),
    ("uptime robot", parse_uptimerobot),
)


def _by_shape(msg: SlackMessage) -> Parser | None:
    title, body, _ = compose(msg)
    if BRACKET.match(title):
        grafana = any("grafana" in a.footer.lower() for a in msg.attachments)
        if grafana or re.search(r"^\s*Labels:\s*$", body, re.MULTILINE | re.IGNORECASE):
            return parse_grafana
        return parse_alertmanager
    if _uptime(f"{title}\n{body}"):
        return parse_uptimerobot
    if any("sentry.io/" in b.text for b in msg.blocks[:1]):
        return parse_sentry
    if _DATADOG_TITLE.match(title):
        return parse_datadog
    return None


def parse(msg: SlackMessage) -> Alert:
    """Return the Alert ``msg`` describes, read by the parser its sender or shape calls for."""
    if not msg.from_bot:
        return parse_text(msg)
    sender = msg.sender.lower()
    for name, parser in BY_SENDER:
        if name in sender:
            return parser(msg)
    by_shape = _by_shape(msg)
    if by_shape is not None:
        return by_shape(msg)
    slug = re.sub(r"[^a-z0-9]+", "-", sender).strip("-")
    return parse_text(msg, source=slug or "text")
