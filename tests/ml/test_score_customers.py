import csv
import datetime as dt
import io
import json
import random

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ml.artifacts import ArtifactError
from ml.churn import ChurnModel, churn_model_train
from ml.features import build_features
from ml.registry import champions, model_version_promote, model_version_register
from ml.scoring import ScoringSummary, features_from_file, score_chunks, write_scores
from retention.mapping import (
    Mapping,
    RowError,
    mapping_load,
    mapping_parse,
    read_mapped_chunks,
    read_mapped_rows,
)
from retention.models import Customer
from retention.records import CustomerRecord, records_to_frames

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


# The session's champion is trained on the synthetic base, whose events, discounts and products no file gives:
# the tests below that are about something else score files with it all the same, and say so.
DEMO_MODEL_ON_A_FILE = {"no_progress": True, "allow_missing_features": True}


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
    call_command("score_customers", str(source), mapping=str(mapping), out=str(out), **DEMO_MODEL_ON_A_FILE)
    rows = read_scores(out)
    assert rows[0] == ["external_id", "churn_probability"]
    assert [row[0] for row in rows[1:]] == [f"K{n:04d}" for n in range(30)]
    assert all(0 < float(row[1]) < 1 for row in rows[1:])
    assert not Customer.objects.filter(external_id__startswith="K").exists()


def test_an_unreadable_row_keeps_its_place_with_an_empty_score(churn_champion, tmp_path, capsys):
    source, mapping = write_file(tmp_path, rows=10, bad_line_at=4)
    out = tmp_path / "scores.csv"
    call_command("score_customers", str(source), mapping=str(mapping), out=str(out), **DEMO_MODEL_ON_A_FILE)
    rows = read_scores(out)
    assert len(rows) == 11
    assert rows[5] == ["K0004", ""]
    assert "1 row could not be read and has no score: line 6" in capsys.readouterr().err


def test_a_failed_run_leaves_the_previous_scores_whole(churn_champion, tmp_path, monkeypatch):
    # The text is decoded ahead in blocks of 8 KB: a bad byte at the end of a file of 600 rows (20 KB) fails the
    # run after five chunks of 100 rows were scored and written.
    monkeypatch.setattr("ml.management.commands.score_customers.CHUNK_ROWS", 100)
    source, mapping = write_file(tmp_path, rows=600)
    out = tmp_path / "scores.csv"
    call_command("score_customers", str(source), mapping=str(mapping), out=str(out), **DEMO_MODEL_ON_A_FILE)
    before = out.read_bytes()
    source.write_bytes(source.read_bytes() + b"K9999;1;\xff\xfe;jaar;v;x;100;nee\n")

    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("score_customers", str(source), mapping=str(mapping), out=str(out), **DEMO_MODEL_ON_A_FILE)

    assert out.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export.csv", "mapping.yaml", "scores.csv"]


def test_the_file_being_scored_is_not_overwritten_by_its_scores(churn_champion, tmp_path):
    source, mapping = write_file(tmp_path, rows=5)
    before = source.read_bytes()

    with pytest.raises(CommandError, match="is the file being scored"):
        call_command("score_customers", str(source), mapping=str(mapping), out=str(source), no_progress=True)

    assert source.read_bytes() == before


def test_the_mapping_is_not_overwritten_by_the_scores(churn_champion, tmp_path):
    source, mapping = write_file(tmp_path, rows=5)
    before = mapping.read_bytes()

    with pytest.raises(CommandError, match="is the mapping: name another file"):
        call_command("score_customers", str(source), mapping=str(mapping), out=str(mapping), no_progress=True)

    assert mapping.read_bytes() == before


def test_scoring_without_a_model_is_a_clear_error(db, tmp_path):
    from ml.registry import champions

    champions.clear()
    source, mapping = write_file(tmp_path, rows=3)
    with pytest.raises(CommandError, match="train_models"):
        call_command("score_customers", str(source), mapping=str(mapping), out=str(tmp_path / "o.csv"))


def test_a_champion_whose_files_are_damaged_is_a_one_line_error_and_writes_nothing(churn_champion, tmp_path, settings):
    (settings.MODEL_DIR / churn_champion.artifact_dir / "booster-0.ubj").write_bytes(b"broken")
    champions.clear()  # as a process that has not loaded it yet
    source, mapping = write_file(tmp_path, rows=3)
    out = tmp_path / "scores.csv"

    with pytest.raises(CommandError, match=r"booster-0\.ubj"):
        call_command("score_customers", str(source), mapping=str(mapping), out=str(out), no_progress=True)

    assert not out.exists()


def test_an_artifact_error_from_loading_the_model_is_a_one_line_error(churn_champion, tmp_path, monkeypatch):
    # Whatever the registry makes of a damaged champion, an ArtifactError that reaches the command is said in one
    # line, not as a traceback.
    def unloadable(kind):
        raise ArtifactError(f"{kind}-v1: /data/models/churn-v1/manifest.json is not valid JSON")

    monkeypatch.setattr(champions, "get", unloadable)
    source, mapping = write_file(tmp_path, rows=3)

    with pytest.raises(CommandError, match=r"^churn-v1: /data/models/churn-v1/manifest.json is not valid JSON$"):
        call_command("score_customers", str(source), mapping=str(mapping), out=str(tmp_path / "o.csv"))


def test_the_churn_benchmark_reports_the_model_beside_its_baselines(db, tmp_path, capsys):
    source, mapping = write_file(tmp_path, rows=300)
    # Two folds, the fewest a cross-validation has: each fold trains the model once more, and the claim is the
    # report's models and their figures, which two folds give as well as more.
    call_command("benchmark_churn", csv=str(source), mapping=str(mapping), folds=2)
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 300
    assert set(report["models"]) == {"churn_model", "logistic_regression", "xgboost_default"}
    for model in report["models"].values():
        assert 0.5 < model["roc_auc"]["mean"] <= 1.0
        assert 0 <= model["ece"]["mean"] < 0.5
    assert report["scoring_rows_per_second"] > 0


# ---------------------------------------------------------------------------------------------------------------
# The column-by-column path scores exactly as records built row by row would

NOW = dt.datetime(2024, 1, 31, 9, 30, tzinfo=dt.UTC)
RICH_MAPPING = """\
id: klantnummer
label:
  column: opgezegd
  churned: ["ja"]
fields:
  display_name: naam
  segment: soort
  value_tier: waarde
  signup_date: klant_sinds
  tenure_months: maanden_klant
  monthly_fee: maandbedrag
  contract_type: contractvorm
  contract_end: einddatum
  products: producten
  region: regio
protected: [geslacht]
exclude: [notitie]
attributes: "*"
"""
RICH_HEADER = [
    "klantnummer", "naam", "soort", "waarde", "klant_sinds", "maanden_klant", "maandbedrag", "contractvorm",
    "einddatum", "producten", "regio", "geslacht", "notitie", "snelheid", "tevredenheid", "postcode", "kanaal",
    "opgezegd",
]  # fmt: skip
BAD_ROWS = {
    7: ["K0007", "", "", "", "", "12", "veel", "jaar", "", "", "", "", "", "100", "", "", "", "nee"],  # bad euros
    19: ["K0019", "", "", "", "31-02-2020", "", "30", "", "", "", "", "", "", "100", "", "", "", "nee"],  # bad date
    23: ["", "", "", "", "", "12", "30", "", "", "", "", "", "", "100", "", "", "", "ja"],  # no id
    31: ["K0031", "", "overheid", "", "", "12", "30", "", "", "", "", "", "", "100", "", "", "", "nee"],  # segment
    42: ["K0042", "", "", "", "", "-3", "30", "", "", "", "", "", "", "100", "", "", "", "nee"],  # negative tenure
    57: ["K0057", "", "", "", "", "12", "", "jaar", "", "", "", "", "", "100", "", "", "", "nee"],  # type, no fee
    64: ["K0064", "te kort"],  # too few values
}


def write_rich_file(tmp_path, rows: int = 400):
    """Rows using every mapping feature, with a churn that follows fee, speed and contract, and a few bad rows."""
    rng = random.Random(7)
    path = tmp_path / "rich.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(RICH_HEADER)
        for number in range(rows):
            writer.writerow(BAD_ROWS.get(number) or rich_row(number, rng))
    mapping = tmp_path / "rich.yaml"
    mapping.write_text(RICH_MAPPING)
    return path, mapping


def rich_row(number: int, rng: random.Random) -> list[str]:
    fee = rng.choice([19.95, 29.85, 45.0, 62.5, 80.25])
    speed = rng.choice(["100", "500", "1000", ""])
    contract = rng.choice(["maand", "jaar", "twee jaar", ""])
    risk = 0.1 + (fee - 19.95) / 120 + (0.25 if contract == "maand" else 0) + (0.1 if speed == "100" else 0)
    return [
        f"K{number:04d}",
        rng.choice(["", "Jan", "An de Vries"]),
        rng.choice(["", "zakelijk", "particulier", "B2C"]),
        rng.choice(["", "goud", "zilver", "brons"]),
        rng.choice(["", "", "", "2019-03-01", "15-07-2021"]),
        str(rng.randrange(0, 72)),
        rng.choice([f"{fee:.2f}".replace(".", ","), f"€ {fee:.2f}", f"{fee:.2f}"]),
        contract,
        rng.choice(["", "", "31-12-2024", "2025-06-30"]) if contract else "",
        rng.choice(["internet", "internet + tv", "Internet|TV|Mobiel", ""]),
        rng.choice(["Noord", "Zuid", "Oost", "West", ""]),
        rng.choice(["v", "m", ""]),
        "vrije tekst",
        speed,
        rng.choice(["1", "2,5", "4", "", "4.5"]),
        rng.choice(["0031", "1234", "9999"]),
        rng.choice(["web", "winkel", "telefoon", "7"]),
        "ja" if rng.random() < min(risk, 0.9) else "nee",
    ]


def scores_record_by_record(path, mapping: Mapping, model: ChurnModel, now: dt.datetime) -> list[list[str]]:
    """The scores of the per-row path: a CustomerRecord per row, records_to_frames, the feature function."""
    items = list(read_mapped_rows(path, mapping, as_of=timezone.localdate(now)))
    records = [item for item in items if isinstance(item, CustomerRecord)]
    probabilities = iter(model.predict_proba(build_features(*records_to_frames(records, as_of=now), {})))
    return [[item.external_id, "" if isinstance(item, RowError) else f"{next(probabilities):.6f}"] for item in items]


def model_trained_on(path, mapping: Mapping, now: dt.datetime) -> ChurnModel:
    records = [item for item in read_mapped_rows(path, mapping, as_of=now.date()) if isinstance(item, CustomerRecord)]
    labels = np.array([record.renewals[0].result == "churned" for record in records], dtype=int)
    return churn_model_train(build_features(*records_to_frames(records, as_of=now), {}), labels, seed=0)


@pytest.fixture(scope="module")
def rich_file(tmp_path_factory):
    """The rich file, its mapping, and a model trained on its labelled rows (so that every feature counts)."""
    path, mapping_path = write_rich_file(tmp_path_factory.mktemp("rich"))
    mapping = mapping_load(mapping_path)
    return path, mapping, model_trained_on(path, mapping, NOW)


def scores_column_by_column(path, mapping: Mapping, model: ChurnModel, chunk_rows: int):
    out, summary = io.StringIO(), ScoringSummary()
    chunks = read_mapped_chunks(path, mapping, as_of=NOW.date(), chunk_rows=chunk_rows)
    write_scores(score_chunks(chunks, model=model, as_of=NOW, new_customer_fees={}), out, summary)
    return list(csv.reader(io.StringIO(out.getvalue()))), summary


def test_scores_made_column_by_column_equal_those_made_record_by_record(rich_file):
    path, mapping, model = rich_file
    assert {"attr:snelheid", "attr:kanaal", "segment", "products", "contract_type"} <= set(model.schema.names)

    rows, summary = scores_column_by_column(path, mapping, model, chunk_rows=1000)

    assert rows[0] == ["external_id", "churn_probability"]
    assert rows[1:] == scores_record_by_record(path, mapping, model, NOW)
    assert [row[0] for row in rows[1:] if not row[1]] == ["K0007", "K0019", "", "K0031", "K0042", "K0057", "K0064"]
    assert summary.unscored_lines == [number + 2 for number in sorted(BAD_ROWS)]
    assert (summary.rows, summary.scored) == (400, 393)


def test_a_chunk_of_bad_rows_only_keeps_its_rows_with_empty_scores(rich_file, tmp_path):
    _, mapping, model = rich_file
    rng = random.Random(1)
    path = tmp_path / "bad_middle.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerows([RICH_HEADER, rich_row(1, rng), BAD_ROWS[7], BAD_ROWS[64], rich_row(2, rng)])

    rows, summary = scores_column_by_column(path, mapping, model, chunk_rows=1)

    assert [row[0] for row in rows[1:]] == ["K0001", "K0007", "K0064", "K0002"]
    assert [bool(row[1]) for row in rows[1:]] == [True, False, False, True]
    assert summary.unscored_lines == [3, 4]


# The second moment is already the next day in Amsterdam, the day the file is read as of.
@pytest.mark.parametrize("now", [NOW, NOW.replace(hour=23, minute=30)])
def test_the_command_scores_a_file_as_the_per_row_path_does(churn_champion, tmp_path, monkeypatch, capsys, now):
    monkeypatch.setattr("django.utils.timezone.now", lambda: now)
    path, mapping = write_rich_file(tmp_path)
    out = tmp_path / "scores.csv"

    call_command("score_customers", str(path), mapping=str(mapping), out=str(out), **DEMO_MODEL_ON_A_FILE)

    expected = scores_record_by_record(path, mapping_load(mapping), champions.get("churn").model, now)
    assert read_scores(out)[1:] == expected
    assert "7 rows could not be read and have no score: lines 9, 21, 25, 33, 44, 59, 66" in capsys.readouterr().err


def test_the_file_is_read_as_of_the_local_day_as_import_customers_reads_it(churn_champion, tmp_path, monkeypatch):
    # 23:30 UTC on the 24th is the 25th in Amsterdam: a customer who signed up that day is no customer of the future.
    monkeypatch.setattr("django.utils.timezone.now", lambda: dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC))
    path = tmp_path / "signed_today.csv"
    path.write_text("klantnummer;klant_sinds;maandbedrag\nK1;2026-11-25;30,00\nK2;2026-11-26;30,00\n")
    mapping = tmp_path / "signup.yaml"
    mapping.write_text("id: klantnummer\nfields:\n  signup_date: klant_sinds\n  monthly_fee: maandbedrag\n")
    out = tmp_path / "scores.csv"

    call_command("score_customers", str(path), mapping=str(mapping), out=str(out), **DEMO_MODEL_ON_A_FILE)

    assert [bool(score) for _, score in read_scores(out)[1:]] == [True, False]


# ---------------------------------------------------------------------------------------------------------------
# A file that leaves some of the model's features without values is refused, unless asked for

TENURE_ONLY = """\
id: klantnummer
fields:
  tenure_months: maanden_klant
attributes: []
"""


def test_a_file_without_the_models_features_is_refused_naming_them_before_anything_is_written(churn_champion, tmp_path):
    source, mapping = write_file(tmp_path, rows=5)
    mapping.write_text(TENURE_ONLY)
    out = tmp_path / "scores.csv"
    schema = champions.get("churn").model.schema

    with pytest.raises(CommandError) as refused:
        call_command("score_customers", str(source), mapping=str(mapping), out=str(out), no_progress=True)

    message = str(refused.value)
    assert f"does not provide {len(schema.names) - 1} of the {len(schema.names)} features churn-v1 uses" in message
    assert "monthly_fee, " in message and "complaints_90d" in message and "tenure_months" not in message
    assert "--allow-missing-features" in message
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export.csv", "mapping.yaml"]


def test_allowed_missing_features_are_named_in_a_warning_and_every_row_is_scored(churn_champion, tmp_path, capsys):
    source, mapping = write_file(tmp_path, rows=5)
    mapping.write_text(TENURE_ONLY)
    out = tmp_path / "scores.csv"

    call_command("score_customers", str(source), mapping=str(mapping), out=str(out), **DEMO_MODEL_ON_A_FILE)

    assert all(row[1] for row in read_scores(out)[1:])
    warning = capsys.readouterr().err
    assert warning.startswith("warning: the mapped file does not provide ")
    assert "monthly_fee, " in warning and "every row is scored without them" in warning


def test_a_model_trained_on_files_like_this_one_scores_them_without_a_warning(
    rich_file, db, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    path, mapping, model = rich_file
    version = model_version_register(
        kind="churn", model=model, metrics={"roc_auc": 0.7}, training_window={"file": "rich.csv"}, training_rows=393
    )
    model_version_promote(version=version, by="test", reason="trained on the rich file")
    champions.clear()
    mapping_path = tmp_path / "rich.yaml"
    mapping_path.write_text(RICH_MAPPING)
    out = tmp_path / "scores.csv"

    call_command("score_customers", str(path), mapping=str(mapping_path), out=str(out), no_progress=True)

    assert "warning" not in capsys.readouterr().err
    assert read_scores(out)[1:] == scores_record_by_record(path, mapping, model, NOW)
    champions.clear()


def test_features_come_from_mapped_fields_and_attributes_not_from_column_names():
    mapping = mapping_parse(
        {"id": "nr", "fields": {"signup_date": "sinds", "contract_type": "vorm", "products": "tenure_months"}}
    )

    provided = features_from_file(mapping, ["snelheid"])

    # A signup date gives tenure; a contract type without a monthly fee makes no contract; products give both
    # of their features; an attribute becomes "attr:"; a customer's history never comes from a file.
    assert {"tenure_months", "products", "n_products", "attr:snelheid"} == provided
    assert not {"contract_type", "monthly_fee", "attr:tenure_months", "complaints_90d"} & provided


@pytest.mark.parametrize("where", ["a directory", "a missing folder"])
def test_out_in_a_place_no_file_can_be_written_is_refused_before_the_file_is_read(
    churn_champion, tmp_path, monkeypatch, where
):
    def must_not_read(*args, **kwargs):
        raise AssertionError("the file was read")

    monkeypatch.setattr("ml.management.commands.score_customers.read_mapped_chunks", must_not_read)
    source, mapping = write_file(tmp_path, rows=3)
    out, message = (tmp_path, "is a directory") if where == "a directory" else (tmp_path / "no" / "s.csv", "not exist")

    with pytest.raises(CommandError, match=message):
        call_command("score_customers", str(source), mapping=str(mapping), out=str(out), no_progress=True)
