"""Option types shared by the management commands: refused in argparse, before a command runs anything."""

import argparse
import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from retention.management import arguments


@pytest.mark.parametrize("text", ["-1", "4294967296", "1.5", "abc", ""])
def test_a_seed_is_a_whole_number_numpy_and_xgboost_accept(text):
    with pytest.raises(argparse.ArgumentTypeError, match="is not a seed"):
        arguments.seed(text)
    assert (arguments.seed("0"), arguments.seed("4294967295")) == (0, 2**32 - 1)


@pytest.mark.parametrize(
    "command",
    [
        "evaluate_policy",
        "simulate_campaign",
        "benchmark_churn",
        "train_models",
        "generate_customers",
        "play_calls",
        "prepare_demo",
    ],
)
def test_every_command_with_a_seed_refuses_a_negative_one_before_running(command):
    with pytest.raises(CommandError, match="argument --seed: '-1' is not a seed"):
        call_command(command, "--seed", "-1")


def test_dates_whole_numbers_and_shares():
    assert arguments.iso_date("2026-01-31") == dt.date(2026, 1, 31)
    assert arguments.positive_int("3") == 3
    assert (arguments.whole_number("0"), arguments.whole_number("7")) == (0, 7)
    assert arguments.share("1") == 1.0
    refused = [
        (arguments.iso_date, "31-01-2026"),
        (arguments.positive_int, "0"),
        (arguments.whole_number, "-1"),
        (arguments.share, "0"),
    ]
    for parse, text in refused:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [("prepare_demo", "--customers", "-5"), ("prepare_demo", "--calls", "-5"), ("generate_customers", "--n", "0"),
     ("play_calls", "--calls", "0")],
)  # fmt: skip
def test_counts_are_refused_before_a_command_seeds_generates_or_trains_anything(command, option, value):
    with pytest.raises(CommandError, match=f"argument {option}: '{value}' is not a whole number"):
        call_command(command, option, value)


@pytest.mark.parametrize(
    ("command", "option"),
    [("generate_customers", "--n"), ("simulate_campaign", "--customers"), ("simulate_campaign", "--rounds"),
     ("benchmark_recommendation", "--repeat"), ("import_customers", "--batch-size"), ("play_calls", "--calls")],
)  # fmt: skip
def test_a_count_too_large_for_any_run_is_refused_in_one_line_not_by_an_overflow(command, option):
    huge = "99999999999999999999"
    with pytest.raises(CommandError, match=f"argument {option}: '{huge}' is more than 10,000,000"):
        call_command(command, option, huge)


def test_a_date_in_the_right_form_that_no_calendar_has_is_named_as_such():
    with pytest.raises(argparse.ArgumentTypeError, match="'2026-02-30' is no day of the calendar"):
        arguments.iso_date("2026-02-30")
    with pytest.raises(argparse.ArgumentTypeError, match="'2026-2-3' is not a date in the form YYYY-MM-DD"):
        arguments.iso_date("2026-2-3")
