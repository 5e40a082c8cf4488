"""The import service: a check pass that writes nothing, then a store pass that writes only what was checked."""

from __future__ import annotations

import pytest

from retention.mapping import MappingError
from retention.models import Customer
from retention.services.imports import ImportRefused, customers_file_check, customers_file_import, customers_file_store
from tests.imports.conftest import AS_OF, HEADER

pytestmark = pytest.mark.django_db

GOOD = "A1,Female,0,12,Month-to-month,29.85,358.2,Yes,No"
BAD = "B1,Male,0,1,One year,ten euro,10,No,No"


def test_the_check_counts_rows_and_reports_each_bad_one_without_writing(write_csv, telco_mapping):
    reported = []

    check = customers_file_check(
        path=write_csv(HEADER, GOOD, BAD), mapping=telco_mapping, as_of=AS_OF, on_error=reported.append
    )

    assert (check.rows, check.bad_lines) == (2, {3})
    assert [(error.line, error.external_id) for error in reported] == [(3, "B1")]
    assert Customer.objects.count() == 0


def test_the_import_refuses_a_file_with_a_bad_row(write_csv, telco_mapping):
    with pytest.raises(ImportRefused, match="1 bad row"):
        customers_file_import(path=write_csv(HEADER, GOOD, BAD), mapping=telco_mapping, as_of=AS_OF)

    assert Customer.objects.count() == 0


def test_the_import_can_leave_bad_rows_out(write_csv, telco_mapping):
    summary = customers_file_import(
        path=write_csv(HEADER, BAD, GOOD), mapping=telco_mapping, as_of=AS_OF, skip_invalid=True
    )

    assert (summary.rows, summary.created, summary.skipped, summary.labelled) == (2, 1, 1, 1)
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["A1"]


def test_a_file_that_changed_after_its_check_is_not_stored_blindly(write_csv, telco_mapping):
    path = write_csv(HEADER, GOOD, GOOD.replace("A1", "A2"))
    check = customers_file_check(path=path, mapping=telco_mapping, as_of=AS_OF)
    path.write_text(f"{HEADER}\n{GOOD}\n{BAD}\n")

    with pytest.raises(MappingError, match="changed while it was imported: line 3 \\(B1\\)"):
        customers_file_store(path=path, mapping=telco_mapping, as_of=AS_OF, check=check, batch_size=1)


def test_a_batch_size_below_one_is_refused(write_csv, telco_mapping):
    path = write_csv(HEADER, GOOD)
    check = customers_file_check(path=path, mapping=telco_mapping, as_of=AS_OF)

    with pytest.raises(ValueError, match="at least 1"):
        customers_file_store(path=path, mapping=telco_mapping, as_of=AS_OF, check=check, batch_size=0)
