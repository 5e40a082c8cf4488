"""Print the fairness report of a period: offer rate, offer value and save rate by group within each risk band."""

from __future__ import annotations

import datetime as dt
import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ml.fairness import fairness_report, text_table
from retention.management import arguments
from retention.selectors.budget import period_bounds
from retention.selectors.fairness import fairness_log
from retention.selectors.outcome_log import OutcomeLogError


class Command(BaseCommand):
    help = (
        "Fairness of the offers made, within each risk band: offer rate, mean offer cost, mean accepted cost and "
        "save rate by protected attribute and by segment, flagged where the smallest group falls below the "
        "threshold share of the largest. Dates are local calendar days, both included."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", type=arguments.iso_date, help="first day (YYYY-MM-DD); default: the first decision"
        )
        parser.add_argument(
            "--until", type=arguments.iso_date, help="last day (YYYY-MM-DD); default: the latest decision"
        )
        parser.add_argument("--json", dest="as_json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--threshold", type=arguments.share, help="ratio below which a metric is flagged (default: settings)"
        )

    def handle(self, *args, since, until, as_json: bool, threshold: float | None, **options) -> None:
        if since and until and until < since:
            raise CommandError(f"--until {until} is before --since {since}")
        start, end = period_bounds(since, until)
        try:
            log = fairness_log(since=start, until=end)
        except OutcomeLogError as error:
            raise CommandError(f"the outcome log cannot be valued: {error}") from error
        report = fairness_report(
            log.frame,
            attributes=log.attributes,
            threshold=threshold if threshold is not None else settings.FAIRNESS_RATIO_THRESHOLD,
            min_group_size=settings.FAIRNESS_MIN_GROUP_SIZE,
        )
        self.stdout.write(self._json(report, since, until) if as_json else self._text(report, since, until))

    def _json(self, report, since: dt.date | None, until: dt.date | None) -> str:
        period = {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None}
        return json.dumps({"period": period, **report.as_json()}, indent=2, ensure_ascii=False)

    def _text(self, report, since: dt.date | None, until: dt.date | None) -> str:
        period = f"{since or 'the first decision'} to {until or 'the latest'}"
        summary = (
            f"Fairness report, {period}: {report.rows} decisions; ratio threshold {report.threshold:.2f}; "
            f"groups with fewer than {report.min_group_size} rows (*) are shown but not flagged, and below "
            f"{report.withheld_below} rows show (<{report.withheld_below}) instead of their value and size; "
            f"{len(report.flagged)} flagged."
        )
        if not report.comparisons:
            return summary + "\nNo decisions with a recorded attribute in this period."
        return summary + "\n" + text_table(report)
