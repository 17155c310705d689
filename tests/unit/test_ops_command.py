"""The `/ops` parser: every subcommand's syntax, and helpful answers to everything else."""

from __future__ import annotations

import pytest

from agape_ops.surfaces.ops_command import SUBCOMMANDS, OpsCommand, OpsUsage, parse, usage_lines


@pytest.mark.parametrize("text", ["", "   ", "/ops", "help", "/ops help", "HELP"])
def test_empty_text_and_help_ask_for_help(text: str) -> None:
    assert parse(text) == OpsCommand("help")


@pytest.mark.parametrize(
    "name", ["runbooks", "runs", "ack", "mitigated", "close", "contacts", "dashboards", "status"]
)
def test_bare_subcommands_parse_to_their_name(name: str) -> None:
    assert parse(f"/ops {name}") == OpsCommand(name)


def test_start_reads_the_runbook_and_its_inputs() -> None:
    assert parse('start payment-gateway-outage reference=T-1.x= note="two words"') == OpsCommand(
        "start",
        target="payment-gateway-outage",
        inputs={"reference": "T-1.x=", "note": "two words"},
    )


def test_smart_quotes_from_slack_are_read_as_plain_quotes() -> None:
    parsed = parse("start inventory-oversell reason=“out of stock”")
    assert isinstance(parsed, OpsCommand)
    assert parsed.inputs == {"reason": "out of stock"}


def test_start_without_a_runbook_shows_its_syntax() -> None:
    assert parse("start") == OpsUsage("Usage: /ops start <runbook> [name=value ...]")


def test_start_with_a_word_that_is_not_a_pair_says_so() -> None:
    parsed = parse("start queue-backlog email")
    assert isinstance(parsed, OpsUsage)
    assert "`email` is not name=value" in parsed.message


def test_unbalanced_quotes_are_reported_not_raised() -> None:
    parsed = parse('run verify reference="abc')
    assert isinstance(parsed, OpsUsage)
    assert "Unbalanced quotes" in parsed.message


def test_run_takes_a_step_id_or_a_number_and_inputs() -> None:
    assert parse("run correct_stock") == OpsCommand("run", target="correct_stock")
    assert parse("run 3 webhook_id=abc") == OpsCommand(
        "run", target="3", inputs={"webhook_id": "abc"}
    )


def test_run_scoped_subcommands_take_an_optional_run_id_first() -> None:
    assert parse("ack inc-7") == OpsCommand("ack", run_id="INC-7")
    assert parse("run INC-2 4") == OpsCommand("run", run_id="INC-2", target="4")
    assert parse("resolve INC-3 stock corrected") == OpsCommand(
        "resolve", run_id="INC-3", text="stock corrected"
    )
    assert parse("status INC-12") == OpsCommand("status", run_id="INC-12")


def test_resolve_yes_confirms_resolving_over_a_problem_and_is_not_part_of_the_note() -> None:
    assert parse("resolve --yes stock corrected") == OpsCommand(
        "resolve", text="stock corrected", confirmed=True
    )
    assert parse("resolve INC-3 stock corrected --yes") == OpsCommand(
        "resolve", run_id="INC-3", text="stock corrected", confirmed=True
    )
    assert parse("resolve INC-3 --yes") == OpsCommand("resolve", run_id="INC-3", confirmed=True)
    assert parse("resolve INC-3") == OpsCommand("resolve", run_id="INC-3")
    # only as the first or last word: inside a note it is the note's
    assert parse("resolve ran it with --yes twice") == OpsCommand(
        "resolve", text="ran it with --yes twice"
    )


def test_use_needs_a_run_id() -> None:
    assert parse("use inc-4") == OpsCommand("use", run_id="INC-4", target="INC-4")
    assert parse("use") == OpsUsage("Usage: /ops use RUN")
    assert parse("use correct_stock") == OpsUsage("Usage: /ops use RUN")


def test_done_reads_item_numbers_separated_by_spaces_or_commas() -> None:
    assert parse("done contact_customers 1, 3 3") == OpsCommand(
        "done", target="contact_customers", items=(1, 3)
    )
    assert parse("done 5") == OpsCommand("done", target="5")


def test_done_rejects_an_item_that_is_not_a_number() -> None:
    parsed = parse("done contact_customers first")
    assert isinstance(parsed, OpsUsage)
    assert "`first` is not an item number" in parsed.message
    assert isinstance(parse("done review 0"), OpsUsage)


def test_skip_keeps_the_reason_as_typed() -> None:
    assert parse("skip pause_marketing no campaigns running") == OpsCommand(
        "skip", target="pause_marketing", text="no campaigns running"
    )


def test_note_keeps_its_text_and_needs_some() -> None:
    assert parse("note Paystack confirmed the outage, ETA 20 min") == OpsCommand(
        "note", text="Paystack confirmed the outage, ETA 20 min"
    )
    assert parse("note") == OpsUsage("Usage: /ops note <text>")


def test_input_reads_a_value_that_itself_contains_equals_signs() -> None:
    assert parse("input reference=T123=x") == OpsCommand("input", inputs={"reference": "T123=x"})
    assert parse("input reference") == OpsUsage(
        "`reference` is not name=value. Usage: /ops input <name>=<value>"
    )
    assert parse("input") == OpsUsage("Usage: /ops input <name>=<value>")


def test_timeline_defaults_to_markdown_and_knows_json() -> None:
    assert parse("timeline") == OpsCommand("timeline", text="md")
    assert parse("timeline JSON") == OpsCommand("timeline", text="json")
    assert parse("timeline INC-1 json") == OpsCommand("timeline", run_id="INC-1", text="json")
    parsed = parse("timeline pdf")
    assert isinstance(parsed, OpsUsage)
    assert "md, json" in parsed.message


def test_unknown_subcommand_lists_them_and_suggests_the_closest() -> None:
    parsed = parse("/ops reslove now")
    assert isinstance(parsed, OpsUsage)
    assert "Unknown subcommand `reslove`" in parsed.message
    assert "Did you mean `resolve`?" in parsed.message
    for name in SUBCOMMANDS:
        assert name in parsed.message


def test_bare_subcommands_reject_extra_words() -> None:
    assert parse("close now please") == OpsUsage("Usage: /ops close")


def test_usage_lines_cover_every_subcommand() -> None:
    lines = usage_lines()
    assert len(lines) == len(SUBCOMMANDS)
    assert any(line.startswith("done <step|number> [item numbers]") for line in lines)


def test_with_the_run_prefix_only_a_real_run_id_is_read_as_one() -> None:
    note = parse("/ops note db-1 is down", run_prefix="INC")
    scoped = parse("/ops note inc-7 db-1 is down", run_prefix="INC")

    assert note == OpsCommand("note", text="db-1 is down")
    assert scoped == OpsCommand("note", run_id="INC-7", text="db-1 is down")


def test_a_rehearsals_id_is_a_run_id_whatever_the_incident_prefix() -> None:
    assert parse("/ops ack reh-3", run_prefix="INC") == OpsCommand("ack", run_id="REH-3")
    assert parse("/ops note REH-3 db-1 is down", run_prefix="OPS") == OpsCommand(
        "note", run_id="REH-3", text="db-1 is down"
    )
