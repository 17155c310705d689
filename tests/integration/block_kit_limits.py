"""Slack's hard limits on Block Kit, as pure functions a test can call on any dict.

The fake Slack (``fake_slack``) refuses a message or view that breaks one of these, as Slack
does; a test can also check what the bot builds directly::

    assert message_problems({"text": text, "blocks": blocks}) == []
    assert view_problems(modal) == []

Each problem is worded as Slack words it in ``response_metadata.messages``, with a JSON pointer
to the offending value, e.g. ``[ERROR] must be less than 3001 characters
[json-pointer:/blocks/0/text/text]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
MESSAGE_TEXT = 40_000
VIEW_TYPES = ("modal", "home")
TEXT_TYPES = ("plain_text", "mrkdwn")
BLOCK_TYPES = (
    "actions",
    "context",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "video",
)
SELECTS_WITH_OPTIONS = {
    "static_select": 100,
    "multi_static_select": 100,
    "overflow": 5,
    "radio_buttons": 10,
    "checkboxes": 10,
}


class _Checker:
    """Collects problems while walking a payload; each method checks one kind of object."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, message: str, pointer: str) -> None:
        self.problems.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def length(self, value: Any, limit: int, pointer: str, *, minimum: int = 0) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            self.add("must be a string", pointer)
        elif len(value) > limit:
            self.add(f"must be less than {limit + 1} characters", pointer)
        elif len(value) < minimum:
            self.add(f"must be more than {minimum - 1} characters", pointer)

    def items(self, value: Any, limit: int, pointer: str) -> list[Any]:
        """Check that ``value`` is a list of at most ``limit`` items; return it (or [])."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.add("must be an array", pointer)
            return []
        if len(value) > limit:
            self.add(f"no more than {limit} items allowed", pointer)
        return value

    def text(self, obj: Any, limit: int, pointer: str, *, plain: bool = False) -> None:
        """A text object: ``{"type": "plain_text"|"mrkdwn", "text": ...}``, 1 to limit chars."""
        if obj is None:
            return
        if not isinstance(obj, Mapping):
            self.add("must be a text object", pointer)
            return
        allowed = ("plain_text",) if plain else TEXT_TYPES
        if obj.get("type") not in allowed:
            self.add(f"must be one of {', '.join(allowed)}", f"{pointer}/type")
        self.length(obj.get("text"), limit, f"{pointer}/text", minimum=1)
        if "text" not in obj:
            self.add("missing required field: text", pointer)

    def blocks(self, blocks: Any, limit: int, pointer: str) -> None:
        seen: set[str] = set()
        for index, block in enumerate(self.items(blocks, limit, pointer)):
            at = f"{pointer}/{index}"
            if not isinstance(block, Mapping):
                self.add("must be an object", at)
                continue
            block_id = block.get("block_id")
            if block_id is not None:
                self.length(block_id, 255, f"{at}/block_id", minimum=1)
                if block_id in seen:
                    self.add(f"duplicate block_id: {block_id}", f"{at}/block_id")
                seen.add(block_id)
            self.block(block, at)

    def block(self, block: Mapping[str, Any], at: str) -> None:
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.add(f"unsupported block type: {kind}", f"{at}/type")
        elif kind == "section":
            self.section(block, at)
        elif kind == "header":
            self.text(block.get("text"), 150, f"{at}/text", plain=True)
        elif kind == "actions":
            self.elements(block, 25, at)
        elif kind == "context":
            for index, element in enumerate(
                self.items(block.get("elements"), 10, f"{at}/elements")
            ):
                if isinstance(element, Mapping) and element.get("type") in TEXT_TYPES:
                    self.text(element, 3000, f"{at}/elements/{index}")
        elif kind == "input":
            self.text(block.get("label"), 2000, f"{at}/label", plain=True)
            self.text(block.get("hint"), 2000, f"{at}/hint", plain=True)
            if not isinstance(block.get("element"), Mapping):
                self.add("missing required field: element", at)
            else:
                self.element(block["element"], f"{at}/element")
        elif kind == "image":
            self.length(block.get("alt_text"), 2000, f"{at}/alt_text")
            self.length(block.get("image_url"), 3000, f"{at}/image_url")
            self.text(block.get("title"), 2000, f"{at}/title", plain=True)

    def section(self, block: Mapping[str, Any], at: str) -> None:
        if block.get("text") is None and not block.get("fields"):
            self.add("must provide either text or fields", at)
        self.text(block.get("text"), 3000, f"{at}/text")
        for index, field in enumerate(self.items(block.get("fields"), 10, f"{at}/fields")):
            self.text(field, 2000, f"{at}/fields/{index}")
        if isinstance(block.get("accessory"), Mapping):
            self.element(block["accessory"], f"{at}/accessory")

    def elements(self, block: Mapping[str, Any], limit: int, at: str) -> None:
        action_ids: set[str] = set()
        elements = self.items(block.get("elements"), limit, f"{at}/elements")
        if not elements:
            self.add("must have at least 1 item", f"{at}/elements")
        for index, element in enumerate(elements):
            if not isinstance(element, Mapping):
                self.add("must be an object", f"{at}/elements/{index}")
                continue
            action_id = element.get("action_id")
            if isinstance(action_id, str):
                if action_id in action_ids:
                    pointer = f"{at}/elements/{index}/action_id"
                    self.add(f"duplicate action_id: {action_id}", pointer)
                action_ids.add(action_id)
            self.element(element, f"{at}/elements/{index}")

    def element(self, element: Mapping[str, Any], at: str) -> None:
        kind = element.get("type")
        self.length(element.get("action_id"), 255, f"{at}/action_id", minimum=1)
        self.text(element.get("placeholder"), 150, f"{at}/placeholder", plain=True)
        if isinstance(element.get("confirm"), Mapping):
            self.confirm(element["confirm"], f"{at}/confirm")
        if kind == "button":
            self.text(element.get("text"), 75, f"{at}/text", plain=True)
            self.length(element.get("value"), 2000, f"{at}/value")
            self.length(element.get("url"), 3000, f"{at}/url")
        elif kind in SELECTS_WITH_OPTIONS:
            limit = SELECTS_WITH_OPTIONS[kind]
            options = self.items(element.get("options"), limit, f"{at}/options")
            for index, option in enumerate(options):
                self.option(option, f"{at}/options/{index}")
            groups = self.items(element.get("option_groups"), 100, f"{at}/option_groups")
            for index, group in enumerate(groups):
                if isinstance(group, Mapping):
                    self.option_group(group, f"{at}/option_groups/{index}")
            if isinstance(element.get("initial_option"), Mapping):
                self.option(element["initial_option"], f"{at}/initial_option")
        elif kind == "plain_text_input":
            self.length(element.get("initial_value"), 3000, f"{at}/initial_value")

    def option_group(self, group: Mapping[str, Any], at: str) -> None:
        self.text(group.get("label"), 75, f"{at}/label", plain=True)
        for index, option in enumerate(self.items(group.get("options"), 100, f"{at}/options")):
            self.option(option, f"{at}/options/{index}")

    def option(self, option: Any, at: str) -> None:
        if not isinstance(option, Mapping):
            self.add("must be an option object", at)
            return
        self.text(option.get("text"), 75, f"{at}/text")
        self.length(option.get("value"), 150, f"{at}/value", minimum=1)
        self.text(option.get("description"), 75, f"{at}/description")

    def confirm(self, confirm: Mapping[str, Any], at: str) -> None:
        self.text(confirm.get("title"), 100, f"{at}/title", plain=True)
        self.text(confirm.get("text"), 300, f"{at}/text")
        self.text(confirm.get("confirm"), 30, f"{at}/confirm", plain=True)
        self.text(confirm.get("deny"), 30, f"{at}/deny", plain=True)


def message_problems(message: Mapping[str, Any], *, at: str = "") -> list[str]:
    """Return what breaks Slack's limits in a message: the body of ``chat.postMessage``,
    ``chat.update``, ``chat.postEphemeral`` or a ``response_url`` post (text, blocks and
    the blocks of attachments). An empty list means Slack would take it."""
    checker = _Checker()
    checker.length(message.get("text"), MESSAGE_TEXT, f"{at}/text")
    if message.get("blocks") is not None:
        checker.blocks(message["blocks"], MESSAGE_BLOCKS, f"{at}/blocks")
    for index, attachment in enumerate(
        checker.items(message.get("attachments"), 100, f"{at}/attachments")
    ):
        if isinstance(attachment, Mapping) and attachment.get("blocks") is not None:
            pointer = f"{at}/attachments/{index}/blocks"
            checker.blocks(attachment["blocks"], MESSAGE_BLOCKS, pointer)
    return checker.problems


def view_problems(view: Any, *, at: str = "") -> list[str]:
    """Return what breaks Slack's limits in a modal or Home tab view (``at`` is the pointer
    prefix: the fake passes ``/view``, as Slack reports it for ``views.*``)."""
    checker = _Checker()
    if not isinstance(view, Mapping):
        checker.add("must be a view object", at or "/")
        return checker.problems
    kind = view.get("type")
    if kind not in VIEW_TYPES:
        checker.add(f"must be one of {', '.join(VIEW_TYPES)}", f"{at}/type")
    if kind == "modal":
        if view.get("title") is None:
            checker.add("missing required field: title", at or "/")
        checker.text(view.get("title"), 24, f"{at}/title", plain=True)
        checker.text(view.get("submit"), 24, f"{at}/submit", plain=True)
        checker.text(view.get("close"), 24, f"{at}/close", plain=True)
        has_input = any(
            isinstance(block, Mapping) and block.get("type") == "input"
            for block in view.get("blocks") or []
        )
        if has_input and view.get("submit") is None:
            checker.add("a modal with input blocks needs a submit button", f"{at}/submit")
    if view.get("blocks") is None:
        checker.add("missing required field: blocks", at or "/")
    checker.blocks(view.get("blocks"), VIEW_BLOCKS, f"{at}/blocks")
    checker.length(view.get("private_metadata"), 3000, f"{at}/private_metadata")
    checker.length(view.get("callback_id"), 255, f"{at}/callback_id")
    checker.length(view.get("external_id"), 255, f"{at}/external_id")
    return checker.problems


def problems(payload: Mapping[str, Any]) -> list[str]:
    """Return the problems of a view (a dict whose ``type`` is modal or home) or a message."""
    if payload.get("type") in VIEW_TYPES:
        return view_problems(payload)
    return message_problems(payload)
