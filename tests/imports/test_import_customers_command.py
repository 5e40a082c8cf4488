"""`manage.py import_customers`: a file is stored whole or refused whole, and importing it again changes nothing."""

from __future__ import annotations

import datetime as dt
import os
import signal
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from retention.models import Contract, Customer, ProtectedAttributes, RenewalResult
from retention.services.erasure import customer_erase
from tests.imports.conftest import HEADER, mapping_dict

pytestmark = pytest.mark.django_db

GOOD_ROWS = [
    "A1,Female,0,12,Month-to-month,29.85,358.2,Yes,No",
    "A2,Male,1,24,Two year,56.95,1366.8,No,Yes",
    "A3,Male,0,0,One year,45,,No,",
]


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(mapping_dict()))
    return path


def run_refused(path: Path, mapping_file: Path, *options: str) -> tuple[CommandError, str]:
    err = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(
            "import_customers", str(path), "--mapping", str(mapping_file), *options, stderr=err, stdout=StringIO()
        )
    return raised.value, err.getvalue()


def run(path: Path, mapping_file: Path, *options: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_customers", str(path), "--mapping", str(mapping_file), "--as-of", "2024-01-31", *options,
                 stdout=out, stderr=err)  # fmt: skip
    return out.getvalue(), err.getvalue()


def test_a_good_file_is_stored_with_contracts_labels_and_protected_values(write_csv, mapping_file):
    out, _ = run(write_csv(HEADER, *GOOD_ROWS), mapping_file)

    assert "3 rows read: 3 created, 0 updated, 0 unchanged, 0 skipped, 2 labelled" in out
    customer = Customer.objects.get(external_id="A2")
    assert customer.attributes == {"Partner": "No"}
    assert customer.protected.values == {"gender": "Male", "SeniorCitizen": "1"}
    assert customer.contracts.get().monthly_fee_cents == 5695
    assert list(RenewalResult.objects.values_list("customer__external_id", "result", "source").order_by("pk")) == [
        ("A1", "renewed", "import"),
        ("A2", "churned", "import"),
    ]


def test_a_file_with_bad_rows_is_refused_whole_listing_every_bad_line(write_csv, mapping_file):
    path = write_csv(
        HEADER,
        GOOD_ROWS[0],
        "B1,Male,0,twelve,One year,10,10,No,No",
        GOOD_ROWS[1],
        "B2,Male,0,1,One year,-10,10,No,No",
        GOOD_ROWS[0],
    )

    error, err = run_refused(path, mapping_file)

    assert "3 bad row(s) listed above; nothing was imported" in str(error)
    assert err.splitlines() == [
        f"{path.name}: line 3 (B1): tenure_months (column tenure): 'twelve' is not a number",
        f"{path.name}: line 5 (B2): monthly_fee (column MonthlyCharges): '-10' is negative",
        f"{path.name}: line 6 (A1): duplicate id: an earlier row has it too",
    ]
    assert Customer.objects.count() == 0
    assert RenewalResult.objects.count() == 0


def test_a_record_the_store_would_refuse_is_a_bad_row(write_csv, mapping_file):
    path = write_csv(HEADER, GOOD_ROWS[0], f"{'X' * 101},Male,0,1,One year,10,10,No,No")

    _, err = run_refused(path, mapping_file)

    assert err.startswith(f"{path.name}: line 3 (XXX")
    assert "external_id: must be 1 to 100 characters" in err
    assert Customer.objects.count() == 0


def test_skip_invalid_imports_the_good_rows_and_reports_the_bad(write_csv, mapping_file):
    path = write_csv(HEADER, GOOD_ROWS[0], "B1,Male,0,1,One year,free,10,No,No", GOOD_ROWS[1], GOOD_ROWS[1])

    out, err = run(path, mapping_file, "--skip-invalid")

    assert "4 rows read: 2 created, 0 updated, 0 unchanged, 2 skipped, 2 labelled" in out
    assert [line.split(":")[1] for line in err.splitlines()] == [" line 3 (B1)", " line 5 (A2)"]
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["A1", "A2"]


def test_a_nul_character_in_any_cell_is_a_bad_row_naming_its_column(write_csv, mapping_file):
    # PostgreSQL refused the whole batch over one such cell (naming no row), and SQLite stored it.
    nul_in_attribute = "B2,Male,0,1,One year,10,10,N\x00o,No"
    path = write_csv(HEADER, GOOD_ROWS[0], "B\x001,Male,0,1,One year,10,10,No,No", nul_in_attribute, GOOD_ROWS[1])

    refused, refused_err = run_refused(path, mapping_file)
    _, err = run(path, mapping_file, "--skip-invalid")

    assert "2 bad row(s) listed above; nothing was imported" in str(refused)
    assert "line 3" in refused_err and "a NUL character (0x00) in column(s) customerID" in refused_err
    assert "line 4 (B2)" in err and "a NUL character (0x00) in column(s) Partner" in err
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["A1", "A2"]


def test_a_header_with_a_nul_character_is_refused(write_csv, mapping_file):
    refused, _ = run_refused(write_csv(HEADER.replace("Partner", "Part\x00ner"), GOOD_ROWS[0]), mapping_file)

    assert "the header holds a NUL character" in str(refused)
    assert not Customer.objects.exists()


def test_a_row_that_changes_only_the_customers_contract_counts_as_updated(write_csv, mapping_file):
    run(write_csv(HEADER, *GOOD_ROWS), mapping_file)
    heard_before = Customer.objects.get(external_id="A1").updated_at
    new_fee = GOOD_ROWS[0].replace("Month-to-month,29.85", "Two year,39.85")

    out, _ = run(write_csv(HEADER, new_fee, *GOOD_ROWS[1:]), mapping_file)

    assert "3 rows read: 0 created, 1 updated, 2 unchanged, 0 skipped" in out
    assert Customer.objects.get(external_id="A1").updated_at > heard_before


def test_importing_the_same_file_again_changes_nothing(write_csv, mapping_file):
    path = write_csv(HEADER, *GOOD_ROWS)
    run(path, mapping_file)
    before = (Customer.objects.count(), Contract.objects.count(), RenewalResult.objects.count())

    out, _ = run(path, mapping_file)

    assert "3 rows read: 0 created, 0 updated, 3 unchanged, 0 skipped, 2 labelled" in out
    assert (Customer.objects.count(), Contract.objects.count(), RenewalResult.objects.count()) == before
    assert ProtectedAttributes.objects.count() == 3


def test_a_label_contradicting_the_result_recorded_that_day_is_a_bad_row(write_csv, mapping_file):
    run(write_csv(HEADER, *GOOD_ROWS), mapping_file)
    flipped = GOOD_ROWS[0].removesuffix(",No") + ",Yes"  # A1 renewed that day; now the file says churned

    error, err = run_refused(write_csv(HEADER, flipped), mapping_file, "--as-of", "2024-01-31")

    assert "1 bad row(s)" in str(error)
    assert "A1" in err and "the label says churned on 2024-01-31, but renewed is already recorded" in err
    assert list(RenewalResult.objects.filter(customer__external_id="A1").values_list("result", flat=True)) == [
        "renewed"
    ]


@pytest.mark.parametrize(("as_of", "stored_again"), [("2024-03-01", False), ("2024-09-01", True)])
def test_the_same_file_imported_on_another_day_does_not_record_its_labels_twice(
    write_csv, mapping_file, as_of, stored_again
):
    path = write_csv(HEADER, *GOOD_ROWS)
    run(path, mapping_file)  # as of 2024-01-31

    out, _ = run(path, mapping_file, "--as-of", as_of)

    known = "" if stored_again else " (2 already recorded, not stored again)"
    assert f"0 skipped, 2 labelled{known}, in" in out
    assert RenewalResult.objects.count() == (4 if stored_again else 2)


def test_a_tenure_of_more_than_a_century_or_an_overlong_text_is_a_bad_row(write_csv, mapping_file):
    rows = [GOOD_ROWS[0].replace(",12,", ",99999,"), GOOD_ROWS[1].replace("Two year", "x" * 51), GOOD_ROWS[2]]

    error, err = run_refused(write_csv(HEADER, *rows), mapping_file)

    assert "2 bad row(s)" in str(error)
    assert "'99999' is more than 1200 months" in err
    assert "contract_type longer than 50 characters" in err
    assert not Customer.objects.exists()


def test_a_batch_the_database_refuses_ends_the_import_saying_what_is_stored(write_csv, mapping_file, monkeypatch):
    from django.db import OperationalError

    from retention.services import imports

    store = imports.customers_upsert
    calls = []

    def locked_on_the_second_batch(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("database is locked")
        return store(**kwargs)

    monkeypatch.setattr(imports, "customers_upsert", locked_on_the_second_batch)

    error, _ = run_refused(write_csv(HEADER, *GOOD_ROWS), mapping_file, "--batch-size", "2")

    assert "the database refused a batch after 2 row(s) were stored (database is locked)" in str(error)
    assert "importing the file again is safe" in str(error)
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["A1", "A2"]


def test_an_as_of_date_before_1970_is_refused(write_csv, mapping_file):
    error, _ = run_refused(write_csv(HEADER, *GOOD_ROWS), mapping_file, "--as-of", "0001-01-05")

    assert "--as-of 0001-01-05 is before 1970-01-01" in str(error)
    assert not Customer.objects.exists()


def test_a_changed_row_updates_the_stored_customer(write_csv, mapping_file):
    run(write_csv(HEADER, GOOD_ROWS[0]), mapping_file)

    out, _ = run(write_csv(HEADER, "A1,Female,0,12,One year,31.00,372,No,No"), mapping_file)

    assert "1 rows read: 0 created, 1 updated" in out
    contract = Contract.objects.get(customer__external_id="A1")
    assert (contract.contract_type, contract.monthly_fee_cents) == ("One year", 3100)
    assert Customer.objects.get(external_id="A1").attributes == {"Partner": "No"}


def test_a_semicolon_separated_file_imports(write_csv, mapping_file):
    rows = [row.replace(",", ";").replace("29.85", "29,85") for row in GOOD_ROWS]

    out, _ = run(write_csv(HEADER.replace(",", ";"), *rows), mapping_file)

    assert "3 created" in out
    assert Contract.objects.get(customer__external_id="A1").monthly_fee_cents == 2985


def test_small_batches_store_every_row(write_csv, mapping_file):
    rows = [f"C{n},Male,0,{n},One year,{n}.50,1,No,No" for n in range(7)]

    out, _ = run(write_csv(HEADER, *rows), mapping_file, "--batch-size", "2")

    assert "7 created" in out
    assert Customer.objects.count() == 7


def test_a_missing_file_is_a_one_line_error(tmp_path, mapping_file):
    with pytest.raises(CommandError, match=r"absent.csv: no such file$"):
        run(tmp_path / "absent.csv", mapping_file)


def test_a_bad_mapping_is_a_one_line_error_naming_the_problem(write_csv, tmp_path):
    mapping = tmp_path / "bad.yaml"
    mapping.write_text(yaml.safe_dump(mapping_dict(fields={"churn": "Churn"})))

    with pytest.raises(CommandError, match="unknown field\\(s\\) under 'fields': churn"):
        run(write_csv(HEADER, *GOOD_ROWS), mapping)


def test_a_file_that_lacks_a_mapped_column_is_refused(write_csv, mapping_file):
    path = write_csv(HEADER.replace("Contract", "Contracttype"), *GOOD_ROWS)

    with pytest.raises(CommandError, match="missing from the file's header: Contract "):
        run(path, mapping_file)
    assert Customer.objects.count() == 0


def test_a_file_that_is_not_utf8_is_refused(tmp_path, mapping_file):
    rows = [f"C{n},Male,0,1,One year,10,10,No,No" for n in range(2000)] + ["C,Fémale,0,1,One year,10,10,Ja,No"]
    path = tmp_path / "latin1.csv"
    path.write_bytes("\n".join([HEADER, *rows]).encode("latin-1"))

    error, _ = run_refused(path, mapping_file)

    # The text is decoded a block ahead of the rows; the line named is still the one the byte is on.
    assert "latin1.csv is not UTF-8 text on line 2002: byte 0xe9" in str(error)
    assert Customer.objects.count() == 0


def test_a_date_in_the_future_is_refused_before_anything_is_stored(write_csv, mapping_file):
    path = write_csv(HEADER, *GOOD_ROWS)

    with pytest.raises(CommandError, match="--as-of 2099-01-01 lies in the future"):
        call_command("import_customers", str(path), "--mapping", str(mapping_file), "--as-of", "2099-01-01")

    assert Customer.objects.count() == 0


def test_today_is_the_local_day_the_api_counts_in_not_the_utc_one(write_csv, mapping_file, monkeypatch):
    # 23:30 UTC on the 24th is already the 25th in Amsterdam, where the API takes a renewal dated the 25th.
    monkeypatch.setattr(timezone, "now", lambda: dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC))
    path = write_csv(HEADER, *GOOD_ROWS)

    call_command("import_customers", str(path), "--mapping", str(mapping_file), "--as-of", "2026-11-25",
                 stdout=StringIO())  # fmt: skip
    with pytest.raises(CommandError, match=r"--as-of 2026-11-26 lies in the future \(today is 2026-11-25, Europe/Am"):
        call_command("import_customers", str(path), "--mapping", str(mapping_file), "--as-of", "2026-11-26")

    assert Customer.objects.count() == len(GOOD_ROWS)


@pytest.mark.parametrize(("option", "value"), [("--as-of", "31-01-2024"), ("--batch-size", "0")])
def test_bad_options_are_refused(write_csv, mapping_file, option, value):
    path = write_csv(HEADER, *GOOD_ROWS)

    with pytest.raises(CommandError, match=option.lstrip("-")):
        call_command("import_customers", str(path), "--mapping", str(mapping_file), option, value)


def test_skip_invalid_with_every_row_bad_fails_saying_nothing_was_imported(write_csv, mapping_file):
    path = write_csv(HEADER, "B1,Male,0,twelve,One year,10,10,No,No", "B2,Male,0,1,One year,-10,10,No,No")
    err = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("import_customers", str(path), "--mapping", str(mapping_file), "--skip-invalid",
                     stdout=StringIO(), stderr=err)  # fmt: skip

    assert str(raised.value) == (
        f"{path}: nothing was imported: all 2 row(s) are bad, listed above. Fix them and import the file again."
    )
    assert [line.split(":")[1] for line in err.getvalue().splitlines()] == [" line 2 (B1)", " line 3 (B2)"]
    assert not Customer.objects.exists()


# ---------------------------------------------------------------------------------------------------------------
# An interrupted import says what it stored, and importing the file again completes it

MANY_ROWS = [f"C{n},Male,0,{n},One year,{n}.50,1,No,{'Yes' if n % 3 else 'No'}" for n in range(7)]


def stored_state() -> dict[str, list]:
    """What the customer tables hold, without keys or timestamps: equal after two ways of storing the same file."""
    return {
        "customers": sorted(Customer.objects.values_list("external_id", "signup_date", "attributes")),
        "contracts": sorted(
            Contract.objects.values_list("customer__external_id", "monthly_fee_cents", "contract_type", "start_date")
        ),
        "renewals": sorted(RenewalResult.objects.values_list("customer__external_id", "result", "date", "source")),
        "protected": sorted(ProtectedAttributes.objects.values_list("customer__external_id", "values")),
    }


def stored_in_one_go(path: Path, mapping_file: Path) -> dict[str, list]:
    """The state a whole import of the file leaves, rolled back once read."""
    with transaction.atomic():
        run(path, mapping_file, "--batch-size", "2")
        state = stored_state()
        transaction.set_rollback(True)
    assert not Customer.objects.exists()
    return state


def interrupt_the_second_batch(monkeypatch, interrupt) -> None:
    """Call `interrupt` inside the second batch's transaction, once its customers are written but not committed."""
    from retention.services import customers

    upsert_contracts = customers._upsert_contracts
    batches = []

    def interrupted_on_the_second_batch(*args, **kwargs):
        batches.append(1)
        if len(batches) == 2:
            interrupt()
        return upsert_contracts(*args, **kwargs)

    monkeypatch.setattr(customers, "_upsert_contracts", interrupted_on_the_second_batch)


def run_interrupted(path: Path, mapping_file: Path, *options: str) -> CommandError:
    try:
        error, _ = run_refused(path, mapping_file, *options)
    except KeyboardInterrupt:  # caught here, as pytest would take it for the tester's Ctrl-C and stop
        pytest.fail("the interruption left the command as a KeyboardInterrupt traceback")
    return error


def ctrl_c() -> None:
    raise KeyboardInterrupt


def sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("interrupt", [ctrl_c, sigterm], ids=["Ctrl-C", "SIGTERM"])
def test_an_interrupted_import_says_what_it_stored_and_importing_again_completes_it(
    write_csv, mapping_file, monkeypatch, interrupt
):
    path = write_csv(HEADER, *MANY_ROWS)
    whole = stored_in_one_go(path, mapping_file)
    # Before the command took SIGTERM, a test process would have ended on it: this handler only notes it.
    signals = []

    def note(*_) -> None:
        signals.append("SIGTERM")

    previous = signal.signal(signal.SIGTERM, note)
    try:
        interrupt_the_second_batch(monkeypatch, interrupt)
        error = run_interrupted(path, mapping_file, "--as-of", "2024-01-31", "--batch-size", "2")
        assert signals == []  # the command took the signal
        assert signal.getsignal(signal.SIGTERM) is note  # and gave it back
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert str(error) == (
        f"{path}: interrupted after 2 customer(s) were stored; the rest of the file was not. "
        "Importing the same file again with --as-of 2024-01-31 completes it without storing anything twice."
    )
    # The first batch is stored; the second, interrupted before its commit, is rolled back.
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["C0", "C1"]
    monkeypatch.undo()

    out, _ = run(path, mapping_file, "--batch-size", "2")

    assert "7 rows read: 5 created, 0 updated, 2 unchanged, 0 skipped, 7 labelled (2 already recorded" in out
    assert stored_state() == whole


def test_an_import_interrupted_while_checking_says_nothing_was_imported(write_csv, mapping_file, monkeypatch):
    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("retention.management.commands.import_customers.customers_file_check", interrupted)

    error = run_interrupted(write_csv(HEADER, *GOOD_ROWS), mapping_file)

    assert str(error).endswith("interrupted before any customer was stored; nothing was imported.")


def test_a_file_records_an_objection_to_profiling_and_an_empty_cell_keeps_it(write_csv, tmp_path):
    mapping = tmp_path / "bezwaar.yaml"
    mapping.write_text(yaml.safe_dump({"id": "id", "fields": {"objects_to_profiling": "bezwaar"}}))
    run(write_csv("id,bezwaar", "A1,ja", "A2,nee", "A3,"), mapping)
    assert dict(Customer.objects.values_list("external_id", "objects_to_profiling")) == {
        "A1": True, "A2": False, "A3": False,
    }  # fmt: skip

    run(write_csv("id,bezwaar", "A1,", "A2,ja"), mapping)

    assert dict(Customer.objects.values_list("external_id", "objects_to_profiling")) == {
        "A1": True, "A2": True, "A3": False,
    }  # fmt: skip


def test_a_customer_erased_at_their_request_is_left_out_of_a_later_import_and_counted(write_csv, mapping_file):
    path = write_csv(HEADER, *GOOD_ROWS)
    run(path, mapping_file)
    erased = Customer.objects.get(external_id="A2")
    customer_erase(customer=erased, requested_by="dpo")

    out, _ = run(path, mapping_file)

    assert "3 rows read: 0 created, 0 updated, 2 unchanged, 0 skipped, 1 left out as erased, 1 labelled" in out
    assert "1 customers erased at their request were left out, not stored again: A2 (allow_customer_again" in out
    assert not Customer.objects.filter(external_id="A2").exists()
    assert Customer.objects.count() == 3  # A1, A3 and the anonymous row of A2
