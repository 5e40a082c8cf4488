"""Model verdicts as phrases: English for the log, any catalog language for the pages, the same figures in both."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from ml.verdicts import PHRASES, english_number, is_phrase, phrase, render

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# Phrases whose Dutch reads as their English: figures and punctuation only.
SAME_IN_DUTCH = {"judged", "ece_within_bar", "ece_over_bar"}


def test_a_phrase_renders_nested_phrases_and_figures_in_english():
    verdict = phrase(
        "judged",
        figures=phrase("figures", challenger_auc=0.73412, champion_auc=0.7, rows=666),
        calibration=phrase("ece_within_bar", ece=0.0249, max_ece=0.05),
        outcome=phrase("promoted"),
        basis=phrase("basis_may_have_seen", until="2026-11-23", seen=666),
    )
    assert render(verdict) == (
        "challenger AUC 0.734 vs champion 0.7 on 666 holdout rows; ECE 0.025 ≤ 0.05: promoted (whole holdout; the "
        "champion was trained on data up to 2026-11-23, so it may have seen 666 of these rows)"
    )


def test_text_someone_typed_is_its_own_rendering_and_no_phrase():
    assert render("restored by hand") == "restored by hand"
    assert not is_phrase("restored by hand")
    assert not is_phrase({"code": "no such phrase", "params": {}})


def test_an_unknown_code_or_a_missing_figure_is_refused_when_the_phrase_is_made():
    with pytest.raises(KeyError, match="no phrase 'nonsense'"):
        phrase("nonsense")
    with pytest.raises(KeyError, match="champion_auc"):
        phrase("figures", challenger_auc=0.7, rows=10)


@pytest.mark.parametrize("code", sorted(PHRASES))
def test_every_phrase_has_a_dutch_translation_with_the_same_placeholders(code):
    english = PHRASES[code]
    with translation.override("nl"):
        dutch = translation.gettext(english)
    assert sorted(PLACEHOLDER.findall(dutch)) == sorted(PLACEHOLDER.findall(english))
    assert (dutch == english) is (code in SAME_IN_DUTCH)


def test_figures_keep_three_decimals_at_most():
    assert [english_number(value) for value in (0.73449, 0.05, 1.0, 0.0005)] == ["0.734", "0.05", "1", "0.001"]


def test_two_figures_of_one_phrase_that_differ_never_read_the_same():
    refused = phrase(
        "ece_over_bar_within_chance_above_champion",
        ece=0.02614,
        max_ece=0.05,
        chance_ece=0.071,
        rows=187,
        champion_ece=0.02581,
    )

    assert render(refused) == (
        "ECE 0.0261 > 0.05, within the 0.071 an exactly calibrated model reaches by chance on 187 rows and above the "
        "champion's 0.0258"
    )
    assert render(phrase("ece_within_bar", ece=0.02614, max_ece=0.05)) == "ECE 0.026 ≤ 0.05"
