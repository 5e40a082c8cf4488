"""Why a model version was promoted, kept out or refused, as phrases that carry their figures.

A verdict is stored twice: as English text, the log an operator greps, and as a phrase, a
code with its parameters (JSON), so a page can say it in its reader's language. A
parameter is text, a number, or a phrase of its own: "challenger AUC … (whole holdout; …)"
is one phrase holding the figures, the calibration, the outcome and the basis.

Plain Python: the templates are English msgids with %(name)s placeholders, marked for the
translation catalog by name only; whoever renders passes its own translate and number
functions (`render`), and English is the default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Phrase = dict[str, Any]


def gettext_noop(message: str) -> str:
    """Marks a msgid for the translation catalog (the extractor looks for this name); translates nothing."""
    return message


PHRASES: dict[str, str] = {
    # The whole verdict on a challenger, and its parts.
    "judged": gettext_noop("%(figures)s; %(calibration)s: %(outcome)s (%(basis)s)"),
    "first_model": gettext_noop("first model of its kind (AUC %(auc)s, ECE %(ece)s on %(rows)s holdout rows)"),
    "first_model_untested": gettext_noop("first model of its kind"),
    "figures": gettext_noop("challenger AUC %(challenger_auc)s vs champion %(champion_auc)s on %(rows)s holdout rows"),
    "figures_below": gettext_noop(
        "challenger AUC %(challenger_auc)s vs champion %(champion_auc)s on %(rows)s holdout rows "
        "(more than %(tolerance)s below)"
    ),
    "ece_within_bar": gettext_noop("ECE %(ece)s ≤ %(max_ece)s"),
    "ece_over_bar": gettext_noop("ECE %(ece)s > %(max_ece)s"),
    "ece_over_bar_within_chance_at_most_champion": gettext_noop(
        "ECE %(ece)s > %(max_ece)s, within the %(chance_ece)s an exactly calibrated model reaches by chance on "
        "%(rows)s rows and at most the champion's %(champion_ece)s"
    ),
    "ece_over_bar_within_chance_above_champion": gettext_noop(
        "ECE %(ece)s > %(max_ece)s, within the %(chance_ece)s an exactly calibrated model reaches by chance on "
        "%(rows)s rows and above the champion's %(champion_ece)s"
    ),
    "ece_over_bar_beyond_chance_at_most_champion": gettext_noop(
        "ECE %(ece)s > %(max_ece)s, beyond the %(chance_ece)s an exactly calibrated model reaches by chance on "
        "%(rows)s rows and at most the champion's %(champion_ece)s"
    ),
    "ece_over_bar_beyond_chance_above_champion": gettext_noop(
        "ECE %(ece)s > %(max_ece)s, beyond the %(chance_ece)s an exactly calibrated model reaches by chance on "
        "%(rows)s rows and above the champion's %(champion_ece)s"
    ),
    "promoted": gettext_noop("promoted"),
    "kept_worse": gettext_noop("kept the champion, challenger worse"),
    "kept_not_calibrated": gettext_noop("kept the champion, challenger not calibrated"),
    "kept_worse_and_not_calibrated": gettext_noop("kept the champion, challenger worse and not calibrated"),
    # Which holdout rows the two were compared on.
    "basis_no_champion": gettext_noop("no champion to compare with"),
    "basis_window_unknown": gettext_noop(
        "whole holdout; the champion's training window is unknown, so it may have seen these rows"
    ),
    "basis_all_after_window": gettext_noop("whole holdout, all after the champion's training window (to %(until)s)"),
    "basis_rows_after_window": gettext_noop("holdout rows after the champion's training window (to %(until)s)"),
    "basis_may_have_seen": gettext_noop(
        "whole holdout; the champion was trained on data up to %(until)s, so it may have seen %(seen)s of these rows"
    ),
    "basis_stand_in": gettext_noop(
        "%(basis)s; the champion %(champion)s cannot be loaded, so %(stand_in)s, which serves in its place, is the "
        "one compared with"
    ),
    "basis_champion_unloadable": gettext_noop(
        "the champion %(champion)s cannot be loaded, nor any champion before it: nothing serves to compare with"
    ),
    "basis_judged_by_own_figures": gettext_noop(
        "%(basis)s; the champion is judged instead by its own holdout figures from its training (%(rows)s rows)"
    ),
    # Decisions made outside a comparison.
    "champion_changed": gettext_noop(
        "the champion changed while this model trained (%(was)s, now %(now)s): kept out; judged: %(verdict)s"
    ),
    "no_champion": gettext_noop("no champion"),
    "rolled_back": gettext_noop("rolled back from %(current)s to %(target)s: %(reason)s"),
    "rolled_back_to_later": gettext_noop(
        "restored %(target)s, which served before, in place of the older %(current)s: %(reason)s"
    ),
    "rolled_back_without_champion": gettext_noop("rolled back with no champion serving to %(target)s: %(reason)s"),
    "promoted_on_models_page": gettext_noop("promoted on the models page by %(user)s: %(reason)s"),
    "on_models_page": gettext_noop("on the models page by %(user)s: %(reason)s"),
    "no_reason_given": gettext_noop("no reason given"),
    # A kind a retrain refused before training, named as the models page names it.
    "kind_churn": gettext_noop("churn model"),
    "kind_acceptance": gettext_noop("offer-response model"),
    "too_few_labels": gettext_noop(
        "%(kind)s: %(labels)s labelled outcomes; a retrain needs at least %(minimum)s (RETRAIN_MIN_LABELS)"
    ),
    "too_few_of_an_outcome": gettext_noop(
        "%(kind)s: too few labelled outcomes to train: %(rows)s rows, %(churned)s churned; need at least "
        "%(min_rows)s rows and %(min_per_outcome)s of each outcome"
    ),
}


def phrase(code: str, **params: Any) -> Phrase:
    """A phrase of `PHRASES`; refuses an unknown code or missing parameters at once, not when a page shows it."""
    if code not in PHRASES:
        raise KeyError(f"no phrase {code!r}")
    render({"code": code, "params": params})
    return {"code": code, "params": params}


def kind_phrase(kind: str) -> Phrase:
    """A model kind as a phrase, so each reader sees it in their language."""
    return phrase(f"kind_{kind}")


def is_phrase(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("code") in PHRASES and isinstance(value.get("params"), Mapping)


FIGURE_DECIMALS = 3
MOST_DECIMALS = 6


def english_number(value: float, decimals: int = FIGURE_DECIMALS) -> str:
    """A figure to three decimals at most, as figures are judged: 0.7341 -> "0.734", 0.05 -> "0.05"."""
    return f"{round(value, decimals):.{decimals}f}".rstrip("0").rstrip(".")


def decimals_telling_apart(values: list[float]) -> int:
    """Three decimals, or as many more as two different figures of one phrase need not to read the same: a challenger
    refused for an ECE above the champion's must not read "0.026 above the champion's 0.026"."""
    for decimals in range(FIGURE_DECIMALS, MOST_DECIMALS + 1):
        shown = {}
        if all(shown.setdefault(round(v, decimals), v) == v for v in values):
            return decimals
    return MOST_DECIMALS


def render(
    value: Phrase | str,
    *,
    translate: Callable[[str], str] = gettext_noop,
    number: Callable[[float, int], str] = english_number,
) -> str:
    """The phrase as text: each template through `translate`, each float through `number` (ints stay whole).
    Text that is not a phrase (a reason someone typed) comes back as it is."""
    if isinstance(value, str):
        return value
    decimals = decimals_telling_apart([part for part in value["params"].values() if isinstance(part, float)])
    params = {
        name: render(part, translate=translate, number=number)
        if is_phrase(part)
        else number(part, decimals)
        if isinstance(part, float)
        else part
        for name, part in value["params"].items()
    }
    return translate(PHRASES[value["code"]]) % params
