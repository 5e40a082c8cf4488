"""`manage.py benchmark_churn`: a file or option it cannot benchmark is a one-line error, and rows it leaves out
are named on stderr."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.ml.test_score_customers import MAPPING, write_file


def benchmark(source, mapping, **options) -> tuple[dict, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("benchmark_churn", csv=str(source), mapping=str(mapping), stdout=out, stderr=err, **options)
    return json.loads(out.getvalue()), err.getvalue()


@pytest.fixture
def mapping(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty: expected a header line"),
        (b"klantnummer;maanden_klant;maandbedrag;contractvorm;geslacht;notitie\n", "missing from the file's header"),
        (b"klantnummer;maanden_klant;maandbedrag;contractvorm;geslacht;notitie;snelheid;opgezegd\n"
         + "K1;3;30;jaar;v;é;100;nee\n".encode("latin-1"), "is not UTF-8 text"),
    ],
    ids=["empty", "without the label column", "latin-1"],
)  # fmt: skip
def test_a_file_that_cannot_be_read_is_a_one_line_error(tmp_path, mapping, content, message):
    source = tmp_path / "export.csv"
    source.write_bytes(content)

    with pytest.raises(CommandError, match=message):
        benchmark(source, mapping)


def test_too_few_labelled_rows_to_train_in_every_fold_is_refused_before_training(tmp_path):
    source, mapping = write_file(tmp_path, rows=20)

    with pytest.raises(CommandError, match=r"too few labelled rows to cross-validate in 2 folds: 20 rows"):
        benchmark(source, mapping, folds=2)


@pytest.mark.parametrize("folds", ["1", "0", "-2", "two"])
def test_fewer_than_two_folds_are_refused_as_the_options_are_read(tmp_path, folds):
    source, mapping = write_file(tmp_path, rows=3)

    with pytest.raises(CommandError, match=r"--folds: .* a whole number of at least 2"):
        call_command("benchmark_churn", f"--csv={source}", f"--mapping={mapping}", f"--folds={folds}")


def test_more_folds_than_rows_of_an_outcome_are_refused(tmp_path):
    source, mapping = write_file(tmp_path, rows=300)

    with pytest.raises(CommandError, match=r"--folds 100000 is more than the \d+ churned rows .* at most --folds"):
        benchmark(source, mapping, folds=100_000)


def test_rows_left_out_are_counted_and_named_on_stderr(tmp_path):
    source, mapping = write_file(tmp_path, rows=9)
    lines = source.read_text().splitlines()
    # Eight of the nine rows lose their monthly fee: one readable row is left, of one outcome only.
    source.write_text("\n".join([lines[0], lines[1], *(line.replace(",50", "?") for line in lines[2:])]) + "\n")
    err = io.StringIO()

    with pytest.raises(CommandError, match="a benchmark needs both outcomes"):
        call_command("benchmark_churn", csv=str(source), mapping=str(mapping), stderr=err)

    count, *reasons = err.getvalue().splitlines()
    assert count == "8 rows could not be read and were left out: lines 3, 4, 5, 6, 7, 8, 9, 10"
    assert reasons[0] == "export.csv: line 3 (K0001): monthly_fee (column maandbedrag): '31?' is not an amount in euros"
    assert len(reasons) == 8


def test_a_run_reports_the_rows_it_left_out_on_stderr_and_their_count_in_the_report(tmp_path):
    source, mapping = write_file(tmp_path, rows=300, bad_line_at=4)

    report, err = benchmark(source, mapping, folds=2)

    assert (report["rows"], report["skipped_rows"]) == (299, 1)
    assert err == (
        "1 row could not be read and was left out: line 6\n"
        "export.csv: line 6 (K0004): monthly_fee (column maandbedrag): 'niet bekend' is not an amount in euros\n"
    )
