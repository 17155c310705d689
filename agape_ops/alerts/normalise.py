"""Turn whatever arrives (a Slack message event, typed text, JSON) into an Alert, or None.

Pure functions: the Slack surface hands over the event dict, the console hands over text or
parsed JSON. Deciding *whether* a message is an alert lives here too: the bot's own posts,
thread replies, joins, deletions and empty messages are not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from agape_ops.alerts.limits import json_problem, structure_problem
from agape_ops.alerts.model import Alert, AlertStatus
from agape_ops.alerts.prose import add_error_rate, number, status_of
from agape_ops.alerts.sources import Attachment, Block, SlackMessage, parse, parse_text

#: Message subtypes that can carry an alert; every other (joins, deletions, topic...) cannot.
ALERT_SUBTYPES = frozenset({None, "bot_message", "me_message", "file_share"})
#: Status words an Alert-shaped object may use for a resolved alert.
RESOLVED_WORDS = frozenset({"resolved", "ok", "recovered", "up"})
#: How deep rich_text elements are read; Slack's own nest three or four levels.
MAX_RICH_DEPTH = 20


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _text_object(value: Any) -> str:
    return _str(value.get("text")) if isinstance(value, Mapping) else ""


def _rich(element: Mapping[str, Any], depth: int = 0) -> str:
    """Render a rich_text element (section, list, quote, preformatted or leaf) as text.

    Slack nests these a few levels deep; anything below ``MAX_RICH_DEPTH`` is left out, so a
    hostile payload cannot exhaust the stack.
    """
    if depth > MAX_RICH_DEPTH:
        return ""
    kind = element.get("type")
    if kind == "text":
        return _str(element.get("text"))
    if kind == "link":
        return _str(element.get("text")) or _str(element.get("url"))
    if kind == "emoji":
        return f":{_str(element.get('name'))}:"
    if kind == "user":
        return f"@{_str(element.get('user_id'))}"
    if kind == "channel":
        return f"#{_str(element.get('channel_id'))}"
    if kind == "broadcast":
        return f"@{_str(element.get('range'))}"
    if kind == "usergroup":
        return f"@{_str(element.get('usergroup_id'))}"
    children = _dicts(element.get("elements"))
    if kind == "rich_text_list":
        return "\n".join(f"- {_rich(child, depth + 1)}" for child in children)
    joiner = "\n" if kind == "rich_text" else ""
    return joiner.join(_rich(child, depth + 1) for child in children)


def _block(block: Mapping[str, Any]) -> Block | None:
    kind = _str(block.get("type"))
    parts: list[str] = []
    if kind in ("section", "header"):
        parts.append(_text_object(block.get("text")))
        parts.extend(_text_object(field) for field in _dicts(block.get("fields")))
    elif kind == "context":
        parts.extend(_text_object(el) for el in _dicts(block.get("elements")))
    elif kind == "rich_text":
        parts.append(_rich(block))
    else:
        return None
    text = "\n".join(part for part in parts if part.strip())
    return Block(kind=kind, text=text) if text else None


def _blocks(raw: Any) -> tuple[Block, ...]:
    found = (_block(block) for block in _dicts(raw))
    return tuple(block for block in found if block is not None)


def _attachment(raw: Mapping[str, Any]) -> Attachment:
    fields = tuple((_str(f.get("title")), _str(f.get("value"))) for f in _dicts(raw.get("fields")))
    inner = "\n".join(b.text for b in _blocks(raw.get("blocks")))
    text = "\n".join(part for part in (_str(raw.get("text")), inner) if part)
    return Attachment(
        title=_str(raw.get("title")),
        text=text,
        pretext=_str(raw.get("pretext")),
        fallback=_str(raw.get("fallback")),
        footer=_str(raw.get("footer")),
        fields=tuple(field for field in fields if field[0] or field[1]),
        colour=_str(raw.get("color")),
        link=_str(raw.get("title_link")) or None,
    )


def _actions(raw: Any) -> tuple[str, ...]:
    ids: list[str] = []
    for block in _dicts(raw):
        if block.get("type") == "actions":
            ids.extend(_str(el.get("action_id")) for el in _dicts(block.get("elements")))
    return tuple(ids)


def slack_message(message: Mapping[str, Any]) -> SlackMessage:
    """Return the parts of a message event the parsers read."""
    profile = message.get("bot_profile")
    profile_name = _str(profile.get("name")) if isinstance(profile, Mapping) else ""
    blocks = _blocks(message.get("blocks"))
    text = _str(message.get("text"))
    if text.strip() and all(b.kind == "rich_text" for b in blocks):
        blocks = ()  # a person's rich_text repeats ``text``; reading both would double it
    from_bot = bool(message.get("bot_id")) or message.get("subtype") == "bot_message"
    return SlackMessage(
        sender=_str(message.get("username")) or profile_name,
        text=text,
        attachments=tuple(_attachment(a) for a in _dicts(message.get("attachments"))),
        blocks=blocks,
        actions=_actions(message.get("blocks")),
        from_bot=from_bot,
    )


def _is_own(message: Mapping[str, Any], own_bot_id: str | None, own_user_id: str | None) -> bool:
    profile = message.get("bot_profile")
    profile_id = profile.get("id") if isinstance(profile, Mapping) else None
    if own_bot_id and own_bot_id in (message.get("bot_id"), profile_id):
        return True
    return bool(own_user_id) and message.get("user") == own_user_id


def _content(message: Mapping[str, Any]) -> str:
    """Return what a reader sees of a message, to tell a real edit from a thread update."""
    seen = {k: message.get(k) for k in ("text", "attachments", "blocks")}
    return json.dumps(seen, sort_keys=True, default=str)


def from_slack_event(
    event: Mapping[str, Any], *, own_bot_id: str | None = None, own_user_id: str | None = None
) -> Alert | None:
    """Return the Alert a Slack ``message`` event carries, or None when it carries none.

    None for the bot's own posts, thread replies, subtypes such as joins and deletions, edits
    that change nothing visible (Slack edits a parent when its thread grows), edits that leave
    an alert firing or resolved as it was (an unfurled link, an assigned issue) and empty
    messages. An edit (``message_changed``) is read from the edited message, keeping the
    original ts.
    None too for an event past ``limits`` (too big or too deep to read safely).
    """
    if event.get("type", "message") != "message" or structure_problem(event) is not None:
        return None
    message: Mapping[str, Any] = event
    if event.get("subtype") == "message_changed":
        inner, before = event.get("message"), event.get("previous_message")
        if not isinstance(inner, Mapping):
            return None
        if isinstance(before, Mapping) and _content(before) == _content(inner):
            return None
        message = inner
    subtype = message.get("subtype")
    if not isinstance(subtype, str | None) or subtype not in ALERT_SUBTYPES:
        return None
    if _is_own(message, own_bot_id, own_user_id):
        return None
    ts = _str(message.get("ts")) or None
    thread_ts = message.get("thread_ts")
    if thread_ts and thread_ts != ts:
        return None
    view = slack_message(message)
    if view.is_empty():
        return None
    channel = _str(event.get("channel")) or _str(message.get("channel")) or None
    # Validated again (not model_copy): channel and ts come from outside and are cleaned too.
    alert = Alert.model_validate({**parse(view).model_dump(), "channel": channel, "ts": ts})
    if message is not event and _status_unchanged(event.get("previous_message"), alert):
        return None
    return alert


def _status_unchanged(before: Any, alert: Alert) -> bool:
    """Say whether an edit leaves the alert firing (or resolved) as the message was before:
    a link unfurled, an issue assigned, a typo fixed. Only a change of status is news."""
    if not isinstance(before, Mapping) or before.get("subtype") == "message_changed":
        return False
    earlier = from_slack_event(before)
    return earlier is not None and earlier.status is alert.status


def from_text(text: str) -> Alert:
    """Return the Alert a person describes in words (the console's ``alert <text>``)."""
    return parse_text(SlackMessage(text=text))


def _labels(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): str(v) for k, v in raw.items() if v is not None}


def from_alertmanager(payload: Mapping[str, Any]) -> Alert:
    """Return the Alert of an Alertmanager (or Grafana) webhook payload, titled as in Slack."""
    alerts = _dicts(payload.get("alerts"))
    first = alerts[0] if alerts else {}
    status_word = _str(payload.get("status")) or _str(first.get("status")) or "firing"
    status = AlertStatus.RESOLVED if status_word.lower() == "resolved" else AlertStatus.FIRING
    group, common = _labels(payload.get("groupLabels")), _labels(payload.get("commonLabels"))
    labels = {**group, **common, **_labels(first.get("labels"))}
    firing = sum(1 for a in alerts if _str(a.get("status")).lower() != "resolved")
    head = f"[FIRING:{max(firing, 1)}]" if status is AlertStatus.FIRING else "[RESOLVED]"
    words = [v for _, v in sorted(group.items())] or [labels.get("alertname", "")]
    extra = [v for k, v in sorted(common.items()) if k not in group]
    title = _str(payload.get("title")) or " ".join(
        part for part in (head, *words, f"({' '.join(extra)})" if extra else "") if part
    )
    notes = {**_labels(payload.get("commonAnnotations")), **_labels(first.get("annotations"))}
    text_parts = [
        notes.get("summary", ""),
        notes.get("description", ""),
        _str(payload.get("message")),
    ]
    values: dict[str, Any] = {}
    for key, raw in notes.items():
        figure = number(raw)
        if figure is not None:
            values[key] = figure
    raw_values = first.get("values")
    if isinstance(raw_values, Mapping):
        values.update(
            {
                str(k): v
                for k, v in raw_values.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        )
    text = "\n".join(dict.fromkeys(part for part in text_parts if part))
    add_error_rate(values, f"{title}\n{text}")
    grafana = isinstance(raw_values, Mapping) or "orgId" in payload
    link = _str(first.get("generatorURL")) or _str(payload.get("externalURL")) or None
    return Alert(
        source="grafana" if grafana else "alertmanager",
        title=title,
        text=text,
        labels=labels,
        values=values,
        status=status,
        link=link,
    )


def _alert_shaped(obj: Mapping[str, Any]) -> Alert | None:
    data = {k: v for k, v in obj.items() if k in Alert.model_fields}
    if "labels" in data:
        data["labels"] = _labels(data["labels"])
    status = data.get("status")
    if isinstance(status, str):
        word = status.strip().lower()
        data["status"] = AlertStatus.RESOLVED if word in RESOLVED_WORDS else word
    elif status is None:
        data["status"] = status_of(_str(data.get("title"))) or AlertStatus.FIRING
    try:
        alert = Alert.model_validate(data)
    except ValidationError:
        return None
    add_error_rate(alert.values, f"{alert.title}\n{alert.text}")
    return alert


def from_json(obj: Any) -> Alert | None:
    """Return the Alert in a JSON document (the console's ``alert <JSON>``), or None.

    Accepted: an Events API envelope, a bare message event, an Alertmanager webhook payload,
    and an Alert-shaped object (title, text, labels, values, status; other keys are ignored).
    A string is parsed first. None too for a payload past ``limits`` (too big or too deep):
    ``limits.json_problem`` and ``limits.structure_problem`` say why.
    """
    if isinstance(obj, str | bytes):
        if json_problem(obj) is not None:
            return None
        try:
            obj = json.loads(obj)
        except (ValueError, RecursionError):  # malformed (the depth was checked above)
            return None
    if not isinstance(obj, Mapping) or structure_problem(obj) is not None:
        return None
    if obj.get("type") == "event_callback":
        event = obj.get("event")
        return from_slack_event(event) if isinstance(event, Mapping) else None
    if obj.get("type") == "message":
        return from_slack_event(obj)
    if isinstance(obj.get("alerts"), list):
        return from_alertmanager(obj)
    if set(obj) & {"title", "text", "labels"}:
        return _alert_shaped(obj)
    return None
