"""`manage.py score_customers` on a file with problems: each row it cannot read is named with the reason, what
keeps --out from being written is said of --out, and a numeric column holding no number is a missing feature."""

from __future__ import annotations

import csv
import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ml.registry import champions, model_version_promote, model_version_register
from retention.mapping import NOT_SCORED_ERASED, NOT_SCORED_OBJECTED, left_out_at_customers_wish, mapping_load
from retention.services.erasure import customer_erase
from tests.factories import CustomerFactory
from tests.ml.test_score_customers import (
    NOW,
    model_trained_on,
    read_scores,
    scores_record_by_record,
    write_rich_file,
)


@pytest.fixture(scope="module")
def rich_model(tmp_path_factory):
    """A churn model trained on the rich file: it reads snelheid (speed) as a number."""
    path, mapping = write_rich_file(tmp_path_factory.mktemp("rich"))
    model = model_trained_on(path, mapping_load(mapping), NOW)
    assert "attr:snelheid" in model.schema.numeric
    return model


@pytest.fixture
def rich_champion(rich_model, db, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    version = model_version_register(
        kind="churn",
        model=rich_model,
        metrics={"roc_auc": 0.7},
        training_window={"file": "rich.csv"},
        training_rows=393,
    )
    model_version_promote(version=version, by="test", reason="trained on the rich file")
    champions.clear()
    yield rich_model
    champions.clear()


def score(path: Path, mapping: Path, out: Path, **options) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command(
        "score_customers", str(path), mapping=str(mapping), out=str(out), no_progress=True, stdout=stdout,
        stderr=stderr, **options,
    )  # fmt: skip
    return stdout.getvalue(), stderr.getvalue()


def with_column(path: Path, column: str, value_of_row) -> None:
    """Rewrite the rich file with each full row's `column` set to `value_of_row(its number among the data rows)`."""
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle, delimiter=";"))
    for number, row in enumerate(rows):
        if len(row) == len(header):
            row[header.index(column)] = value_of_row(number)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter=";").writerows([header, *rows])


# ---------------------------------------------------------------------------------------------------------------
# Rows that could not be read, with why


def test_each_row_that_could_not_be_read_is_named_with_its_reason(rich_champion, tmp_path):
    path, mapping = write_rich_file(tmp_path)

    _, err = score(path, mapping, tmp_path / "scores.csv")

    lines = err.splitlines()
    assert lines[0] == "7 rows could not be read and have no score: lines 9, 21, 25, 33, 44, 59, 66"
    assert lines[1:] == [
        "rich.csv: line 9 (K0007): monthly_fee (column maandbedrag): 'veel' is not an amount in euros",
        "rich.csv: line 21 (K0019): signup_date (column klant_sinds): '31-02-2020' is not a date "
        "(use 2024-03-31 or 31-03-2024)",
        "rich.csv: line 25 (no id): the id column 'klantnummer' is empty",
        "rich.csv: line 33 (K0031): segment (column soort): unknown segment 'overheid'; expected one of business, "
        "consumer (or a known synonym)",
        "rich.csv: line 44 (K0042): tenure_months (column maanden_klant): '-3' is negative",
        "rich.csv: line 59 (K0057): a contract type or end date is given without a monthly fee",
        "rich.csv: line 66 (K0064): has 2 values where the header has 18",
    ]


def test_the_reasons_of_the_first_twenty_unreadable_rows_are_given(rich_champion, tmp_path, monkeypatch):
    monkeypatch.setattr("ml.management.commands.score_customers.CHUNK_ROWS", 10)  # the rows span chunks
    path, mapping = write_rich_file(tmp_path, rows=60)
    with_column(path, "maandbedrag", lambda number: "veel" if number % 2 else "30")

    _, err = score(path, mapping, tmp_path / "scores.csv")

    summary, *reasons = err.splitlines()
    unscored = summary.split(": lines ")[1].removesuffix(" …").split(", ")
    assert summary.startswith("31 rows could not be read and have no score: lines 3, 5, 7, 9, ")
    assert [reason.split(" ")[2] for reason in reasons] == unscored == [str(line) for line in range(3, 43, 2)]
    assert reasons[0] == "rich.csv: line 3 (K0001): monthly_fee (column maandbedrag): 'veel' is not an amount in euros"


# ---------------------------------------------------------------------------------------------------------------
# --out, not the hidden file the scores are written to first


def test_out_in_a_place_that_cannot_be_written_is_named_as_out(rich_champion, tmp_path):
    path, mapping = write_rich_file(tmp_path)
    out = tmp_path / "scores.csv"
    in_the_way = tmp_path / f".scores.csv.{os.getpid()}.partial"
    in_the_way.mkdir()  # as root, a folder without write permission would still take the file

    with pytest.raises(CommandError) as refused:
        score(path, mapping, out)

    assert str(refused.value) == f"cannot write --out {out}: Is a directory"
    assert in_the_way.is_dir()  # not ours: left as it was
    assert not out.exists()


def test_another_run_writing_the_same_out_at_once_has_its_own_hidden_file(rich_champion, tmp_path):
    path, mapping = write_rich_file(tmp_path)
    out = tmp_path / "scores.csv"
    others = tmp_path / ".scores.csv.1.partial"  # another process's, half written
    others.write_text("half of another run's scores")

    score(path, mapping, out)

    assert others.read_text() == "half of another run's scores"
    assert out.read_text().startswith("external_id,churn_probability\n")


def test_ctrl_c_leaves_out_as_it_was_and_says_so_in_one_line(rich_champion, tmp_path, monkeypatch):
    path, mapping = write_rich_file(tmp_path)
    out = tmp_path / "scores.csv"
    out.write_text("yesterday's scores")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ml.management.commands.score_customers.write_scores", interrupted)
    with pytest.raises(CommandError) as stopped:
        score(path, mapping, out)

    assert str(stopped.value) == f"interrupted: --out {out} keeps its previous contents"
    assert out.read_text() == "yesterday's scores"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["rich.csv", "rich.yaml", "scores.csv"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_a_full_disk_is_said_of_out(rich_champion, tmp_path):
    path, mapping = write_rich_file(tmp_path)
    out = tmp_path / "scores.csv"
    (tmp_path / f".scores.csv.{os.getpid()}.partial").symlink_to("/dev/full")

    with pytest.raises(CommandError) as refused:
        score(path, mapping, out)

    assert str(refused.value) == f"cannot write --out {out}: No space left on device"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["rich.csv", "rich.yaml"]


# ---------------------------------------------------------------------------------------------------------------
# A numeric column that holds no number provides no feature


@pytest.mark.parametrize(
    ("speed", "holds"),
    [("n/a", "no number in any row, only text such as 'n/a'"), ("", "no value in any row")],
    ids=["text", "empty"],
)
def test_a_numeric_column_without_a_number_in_any_row_is_refused_as_a_missing_feature(
    rich_champion, tmp_path, speed, holds
):
    path, mapping = write_rich_file(tmp_path)
    with_column(path, "snelheid", lambda number: speed)
    total = len(rich_champion.schema.names)

    with pytest.raises(CommandError) as refused:
        score(path, mapping, tmp_path / "scores.csv")

    assert str(refused.value) == (
        f"the mapped file does not provide 1 of the {total} features churn-v1 uses: attr:snelheid (column snelheid "
        f"holds {holds}). Put numbers in that column of the file, or pass --allow-missing-features to score "
        "without them"
    )
    assert sorted(item.name for item in tmp_path.iterdir()) == ["rich.csv", "rich.yaml"]


def test_allowed_a_numeric_column_without_a_number_is_named_in_a_warning_and_scores_as_before(rich_champion, tmp_path):
    path, mapping = write_rich_file(tmp_path)
    with_column(path, "snelheid", lambda number: "n/a")
    out = tmp_path / "scores.csv"

    _, err = score(path, mapping, out, allow_missing_features=True)

    assert err.startswith(
        "warning: the mapped file does not provide 1 of the "
        f"{len(rich_champion.schema.names)} features churn-v1 uses: attr:snelheid (column snelheid holds no number "
        "in any row, only text such as 'n/a'); every row is scored without them\n"
    )
    assert read_scores(out)[1:] == scores_record_by_record(path, mapping_load(mapping), rich_champion, NOW)


def test_a_numeric_column_with_a_number_in_its_last_chunk_only_is_scored_without_a_warning(
    rich_champion, tmp_path, monkeypatch
):
    monkeypatch.setattr("ml.management.commands.score_customers.CHUNK_ROWS", 100)
    path, mapping = write_rich_file(tmp_path)
    with_column(path, "snelheid", lambda number: "500" if number == 399 else "n/a")
    out = tmp_path / "scores.csv"

    _, err = score(path, mapping, out)

    assert "warning" not in err
    assert read_scores(out)[1:] == scores_record_by_record(path, mapping_load(mapping), rich_champion, NOW)


def test_a_row_whose_customer_objected_to_profiling_is_left_unscored_saying_so(rich_champion, tmp_path):
    path, mapping = write_rich_file(tmp_path)
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle, delimiter=";"))
    said = {0: "ja", 1: "nee"}
    rows = [[*row, said.get(number, "")] if len(row) == len(header) else row for number, row in enumerate(rows)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter=";").writerows([[*header, "bezwaar"], *rows])
    mapping.write_text(
        mapping.read_text().replace("  region: regio\n", "  region: regio\n  objects_to_profiling: bezwaar\n")
    )

    _, err = score(path, mapping, tmp_path / "scores.csv")

    scores = dict(read_scores(tmp_path / "scores.csv")[1:])
    assert scores["K0000"] == "" and 0 < float(scores["K0001"]) < 1
    lines = err.splitlines()
    assert lines[0].startswith("7 rows could not be read and have no score: lines 9, ")
    withheld = lines.index(
        "1 row is of a customer who objected to profiling or was erased at their request and has no score: line 2"
    )
    assert lines[withheld + 1] == "rich.csv: line 2 (K0000): the customer objected to profiling: not scored"


def test_a_row_of_a_customer_erased_at_their_request_is_left_unscored_until_they_are_let_back(rich_champion, tmp_path):
    path, mapping = write_rich_file(tmp_path)
    customer_erase(customer=CustomerFactory(external_id="K0000"), requested_by="dpo")
    customer_erase(customer=CustomerFactory(external_id="K0001"), requested_by="retention period", refuse_again=False)

    _, err = score(path, mapping, tmp_path / "scores.csv")
    refused = dict(read_scores(tmp_path / "scores.csv")[1:])
    call_command("allow_customer_again", "K0000", stdout=StringIO())
    score(path, mapping, tmp_path / "scores.csv")
    let_back = dict(read_scores(tmp_path / "scores.csv")[1:])

    assert refused["K0000"] == "" and 0 < float(refused["K0001"]) < 1
    assert "rich.csv: line 2 (K0000): the customer was erased at their request: not scored" in err.splitlines()
    assert 0 < float(let_back["K0000"]) < 1


def test_a_row_of_a_customer_whose_objection_is_stored_is_left_unscored_whatever_the_file_says(rich_champion, tmp_path):
    path, mapping = write_rich_file(tmp_path)
    CustomerFactory(external_id="K0000", objects_to_profiling=True)
    CustomerFactory(external_id="K0001", objects_to_profiling=False)

    _, err = score(path, mapping, tmp_path / "scores.csv")

    scores = dict(read_scores(tmp_path / "scores.csv")[1:])
    assert scores["K0000"] == "" and 0 < float(scores["K0001"]) < 1
    assert "rich.csv: line 2 (K0000): the customer objected to profiling: not scored" in err.splitlines()


@pytest.mark.parametrize(
    ("problem", "at_their_wish"),
    [
        (None, False),
        (NOT_SCORED_OBJECTED, True),
        (f"{NOT_SCORED_OBJECTED}; {NOT_SCORED_ERASED}", True),
        (f"signup date 2031-01-01 is after the as-of date 2026-11-25; {NOT_SCORED_OBJECTED}", False),
        ("the id column 'klantnummer' is empty", False),
    ],
)
def test_only_a_row_whose_sole_problem_is_the_customers_wish_counts_as_left_out_at_it(problem, at_their_wish):
    assert left_out_at_customers_wish(problem) is at_their_wish


def test_rows_of_erased_customers_are_counted_apart_from_unreadable_ones(rich_champion, tmp_path):
    path, mapping = write_rich_file(tmp_path)
    for external_id in ("K0000", "K0001"):
        customer_erase(customer=CustomerFactory(external_id=external_id), requested_by="dpo")

    _, err = score(path, mapping, tmp_path / "scores.csv")

    lines = err.splitlines()
    assert lines[0].startswith("7 rows could not be read and have no score: lines 9, ")
    assert (
        "2 rows are of customers who objected to profiling or were erased at their request and have no score: "
        "lines 2, 3" in lines
    )
