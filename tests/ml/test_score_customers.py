import csv
import json

import pytest
from django.core.management import CommandError, call_command

from retention.models import Customer

MAPPING = """\
id: klantnummer
label:
  column: opgezegd
  churned: ["ja"]
fields:
  tenure_months: maanden_klant
  monthly_fee: maandbedrag
  contract_type: contractvorm
protected: [geslacht]
exclude: [notitie]
attributes: "*"
"""


def write_file(tmp_path, rows: int = 120, bad_line_at: int | None = None):
    path = tmp_path / "export.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(
            [
                "klantnummer",
                "maanden_klant",
                "maandbedrag",
                "contractvorm",
                "geslacht",
                "notitie",
                "snelheid",
                "opgezegd",
            ]
        )
        for number in range(rows):
            fee = "niet bekend" if number == bad_line_at else f"{30 + number % 40},50"
            churned = "ja" if (number % 7 == 0 or (number % 40) > 30) else "nee"
            contract = "maand" if number % 3 == 0 else "jaar"
            writer.writerow([f"K{number:04d}", number % 60, fee, contract, "v", "x", 100 * (1 + number % 3), churned])
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    return path, mapping


def read_scores(path):
    with path.open() as handle:
        return list(csv.reader(handle))


def test_every_row_of_the_file_gets_a_score_without_being_imported(churn_champion, tmp_path):
    source, mapping = write_file(tmp_path, rows=30)
    out = tmp_path / "scores.csv"
    call_command("score_customers", str(source), mapping=str(mapping), out=str(out), no_progress=True)
    rows = read_scores(out)
    assert rows[0] == ["external_id", "churn_probability"]
    assert [row[0] for row in rows[1:]] == [f"K{n:04d}" for n in range(30)]
    assert all(0 < float(row[1]) < 1 for row in rows[1:])
    assert not Customer.objects.filter(external_id__startswith="K").exists()


def test_an_unreadable_row_keeps_its_place_with_an_empty_score(churn_champion, tmp_path, capsys):
    source, mapping = write_file(tmp_path, rows=10, bad_line_at=4)
    out = tmp_path / "scores.csv"
    call_command("score_customers", str(source), mapping=str(mapping), out=str(out), no_progress=True)
    rows = read_scores(out)
    assert len(rows) == 11
    assert rows[5] == ["K0004", ""]
    assert "lines 6" in capsys.readouterr().err


def test_scoring_without_a_model_is_a_clear_error(db, tmp_path):
    from ml.registry import champions

    champions.clear()
    source, mapping = write_file(tmp_path, rows=3)
    with pytest.raises(CommandError, match="train_models"):
        call_command("score_customers", str(source), mapping=str(mapping), out=str(tmp_path / "o.csv"))


def test_the_churn_benchmark_reports_the_model_beside_its_baselines(db, tmp_path, capsys):
    source, mapping = write_file(tmp_path, rows=300)
    call_command("benchmark_churn", csv=str(source), mapping=str(mapping), folds=3)
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 300
    assert set(report["models"]) == {"churn_model", "logistic_regression", "xgboost_default"}
    for model in report["models"].values():
        assert 0.5 < model["roc_auc"]["mean"] <= 1.0
        assert 0 <= model["ece"]["mean"] < 0.5
    assert report["scoring_rows_per_second"] > 0
