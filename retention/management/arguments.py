"""Types for management command options: a bad value is refused by argparse with a one-line message naming
the option, before the command runs anything (a CommandError raised here would come with a traceback)."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

# What numpy and XGBoost accept as a seed.
MAX_SEED = 2**32 - 1


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise argparse.ArgumentTypeError(f"{text!r} is no day of the calendar") from None
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD") from None


def external_id(text: str) -> str:
    """A customer's number as a person types or pastes it: without the spaces around it, as the CRM's records are
    stored."""
    value = text.strip()
    if not value:
        raise argparse.ArgumentTypeError("give the customer's number, not an empty one")
    return value


# More than any count a command here can work through on one machine (customers, calls, requests, rows per
# batch); a larger one ended in an OverflowError from numpy or itertools, not a message.
MAX_COUNT = 10_000_000


def positive_int(text: str) -> int:
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    if int(text) > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_COUNT:,}: no run here can work through that many")
    return int(text)


def whole_number(text: str) -> int:
    """0 or more."""
    if not text.isdecimal():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 0")
    return int(text)


def seed(text: str) -> int:
    if not text.isdecimal() or int(text) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed: a whole number from 0 to {MAX_SEED}")
    return int(text)


def share(text: str) -> float:
    """A number above 0 and at most 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if math.isnan(value) or not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not above 0 and at most 1")
    return value


def output_file_problem(path: Path) -> str:
    """Why a command could not write its output to `path`, or "" when it can: asked before the command's work, so
    minutes of it are not lost to a folder that refuses the file at the end. The folder is tried by writing a
    file of its own there, which finds what permission bits alone do not (a read-only disk, a locked folder)."""
    if path.is_dir():
        return f"{path} is a directory: name a file"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".write-test-"):
            pass
        if path.exists():
            with path.open("a"):
                pass
    except OSError as error:
        return f"cannot write {path}: {error.strerror or error}"
    return ""


def rows_left_out(lines: Sequence[int], *, why: str | tuple[str, str], then: tuple[str, str], shown: int) -> str:
    """How many rows a command left out and why, with the lines of the first `shown` of them: "1 row could not be
    read and was left out: line 6", "8 rows could not be read and were left out: lines 3, 4, …". `then` is what
    became of one row and of several ("was left out", "were left out"); `why` too may differ for one and several."""
    one, several = (why, why) if isinstance(why, str) else why
    listed = ", ".join(map(str, lines[:shown])) + (" …" if len(lines) > shown else "")
    if len(lines) == 1:
        return f"1 row {one} and {then[0]}: line {listed}"
    return f"{len(lines)} rows {several} and {then[1]}: lines {listed}"
