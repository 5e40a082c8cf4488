"""How a label read from a CRM file relates to the renewal results already recorded for its customer.

Pure functions: the file's label says how the customer's latest renewal ended, as of the date the file
describes. Recorded results come as (date, result) pairs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from retention.records import RenewalRecord

# Contracts run a year or more, so a customer's next renewal comes no sooner than this after the last: the same
# result again within it is the same renewal exported again (a file imported twice, or on another day without
# --as-of), and storing it would count one outcome twice, in training and in its holdout alike.
LABEL_REPEAT_DAYS = 180

Recorded = Sequence[tuple[dt.date, str]]


def label_contradiction(label: RenewalRecord, recorded: Recorded) -> str:
    """Why the label cannot be stored: the other result is recorded for the same day ("" when none is)."""
    for day, result in recorded:
        if day == label.date and result != label.result:
            return (
                f"the label says {label.result} on {day}, but {result} is already recorded for that day; "
                "a result once recorded stays"
            )
    return ""


def label_already_recorded(label: RenewalRecord, recorded: Recorded) -> bool:
    """The same result is recorded on the same day, or within LABEL_REPEAT_DAYS with no other result between."""
    for day, result in recorded:
        if result != label.result or abs((label.date - day).days) >= LABEL_REPEAT_DAYS:
            continue
        start, end = sorted((day, label.date))
        if not any(start < other_day < end and other != label.result for other_day, other in recorded):
            return True
    return False
