"""Turning the rows of a CRM file into customer records: values, dates, labels, and row errors with their line."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from retention.mapping import (
    LOCAL_TIME_ZONE,
    MappingError,
    RowError,
    attribute_value,
    mapping_parse,
    parse_euros_to_cents,
    read_mapped_chunks,
    read_mapped_rows,
    read_numbered_rows,
)
from retention.mapping_frames import mapped_frames
from retention.records import ContractRecord, CustomerRecord, RenewalRecord, records_to_frames
from tests.imports.conftest import AS_OF, HEADER, mapping_dict


def read(path, mapping, as_of=AS_OF) -> list[CustomerRecord | RowError]:
    return list(read_mapped_rows(path, mapping, as_of=as_of))


def read_one(write_csv, header: str, row: str, **mapping) -> CustomerRecord | RowError:
    (item,) = read(write_csv(header, row), mapping_parse({"id": "id", **mapping}))
    return item


def test_a_telco_row_becomes_a_full_record(write_csv, telco_mapping):
    path = write_csv(HEADER, " 7590-VHVEG ,Female,0,12,Month-to-month,29.85,358.2,Yes,No")

    (record,) = read(path, telco_mapping)

    assert record == CustomerRecord(
        external_id="7590-VHVEG",
        segment="consumer",
        signup_date=date(2023, 1, 31),
        attributes={"Partner": "Yes"},
        protected={"gender": "Female", "SeniorCitizen": "0"},
        contracts=[ContractRecord(monthly_fee_cents=2985, contract_type="Month-to-month")],
        renewals=[RenewalRecord(result="renewed", date=AS_OF)],
    )


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("29.85", 2985),
        ("29,85", 2985),
        ("€ 29,85", 2985),
        ("€29.85", 2985),
        ("29,85 EUR", 2985),
        ("0", 0),
        ("45", 4500),
        ("1.234,50", 123450),
        ("1,234.50", 123450),
        ("19.9951", 2000),
        ("0.125", 13),  # a thousands group cannot follow a lone 0: sub-cent decimals, rounded
        ("1234.567", 123457),  # nor four digits
        ("12.345,67", 1234567),
        ("1,234.56", 123456),
        ("€ 12,5", 1250),
        ("EUR 12", 1200),
        ("12 €", 1200),
    ],
)
def test_amounts_in_euros_become_whole_cents(text, cents):
    assert parse_euros_to_cents(text) == cents


@pytest.mark.parametrize("text", ["abc", "-5", "- 5,00", "12.3.4", "1e3", "€", "NaN", "99999999999", "10000000,00"])
def test_a_fee_that_is_not_an_amount_is_a_row_error_naming_the_column(write_csv, text):
    item = read_one(write_csv, "id;fee", f"A1;{text}", fields={"monthly_fee": "fee"})

    assert isinstance(item, RowError)
    assert item.message.startswith("monthly_fee (column fee):")


@pytest.mark.parametrize(
    ("text", "advice"),
    [
        ("1.234", "write 1234 or 1.234,00"),
        ("1,234", "write 1234 or 1,234.00"),
        ("€ 12.345", "write 12345 or 12.345,00"),
        ("123,456 EUR", "write 123456 or 123,456.00"),
    ],
)
def test_a_fee_whose_one_separator_may_group_thousands_is_a_row_error_saying_how_to_write_it(write_csv, text, advice):
    # In a Dutch export 1.234 is €1,234; it used to be read as €1.23, the third decimal rounded away.
    item = read_one(write_csv, "id;fee", f"A1;{text}", fields={"monthly_fee": "fee"})

    assert isinstance(item, RowError)
    assert item.message == f"monthly_fee (column fee): ambiguous amount {text!r} (thousands or decimals?): {advice}"


def test_without_a_fee_column_there_is_no_contract(write_csv):
    record = read_one(write_csv, "id,tenure", "A1,3", fields={"tenure_months": "tenure"})

    assert record.contracts == []


def test_contract_type_and_end_go_on_the_contract_with_the_fee(write_csv):
    fields = {"monthly_fee": "fee", "contract_type": "type", "contract_end": "end"}

    record = read_one(write_csv, "id,fee,type,end", "A1,10,1y,31-12-2024", fields=fields)

    assert record.contracts == [ContractRecord(monthly_fee_cents=1000, contract_type="1y", end_date=date(2024, 12, 31))]


def test_contract_terms_without_a_fee_are_a_row_error(write_csv):
    fields = {"monthly_fee": "fee", "contract_type": "type"}

    item = read_one(write_csv, "id,fee,type", "A1,,1y", fields=fields)

    assert item == RowError(2, "A1", "a contract type or end date is given without a monthly fee")


@pytest.mark.parametrize(
    ("tenure", "signup"),
    [
        ("0", AS_OF),
        ("12", date(2023, 1, 31)),
        ("1", date(2023, 12, 31)),
        ("2,5", date(2023, 11, 15)),  # two calendar months, then half of a month of average length
        ("24", date(2022, 1, 31)),
    ],
)
def test_tenure_in_months_counts_back_from_the_as_of_date(write_csv, tenure, signup):
    record = read_one(write_csv, "id;tenure", f"A1;{tenure}", fields={"tenure_months": "tenure"})

    assert record.signup_date == signup


@pytest.mark.parametrize("tenure", ["-1", "twelve"])
def test_a_bad_tenure_is_a_row_error(write_csv, tenure):
    item = read_one(write_csv, "id,tenure", f"A1,{tenure}", fields={"tenure_months": "tenure"})

    assert isinstance(item, RowError)
    assert "tenure_months (column tenure)" in item.message


def test_a_signup_date_wins_over_tenure(write_csv):
    fields = {"tenure_months": "tenure", "signup_date": "since"}

    record = read_one(write_csv, "id,tenure,since", "A1,12,2020-05-01", fields=fields)

    assert record.signup_date == date(2020, 5, 1)


def test_tenure_fills_in_where_the_signup_date_is_empty(write_csv):
    fields = {"tenure_months": "tenure", "signup_date": "since"}

    record = read_one(write_csv, "id,tenure,since", "A1,12,", fields=fields)

    assert record.signup_date == date(2023, 1, 31)


@pytest.mark.parametrize("text", ["2020-05-01", "01-05-2020", "1/5/2020", "01.05.2020", "2020-05-01T10:00:00"])
def test_signup_dates_are_read_iso_or_day_first(write_csv, text):
    record = read_one(write_csv, "id,since", f"A1,{text}", fields={"signup_date": "since"})

    assert record.signup_date == date(2020, 5, 1)


@pytest.mark.parametrize(
    "text",
    [
        "2020-05-01T00:00:00+02:00",
        "2020-04-30T22:00:00Z",  # the same moment: 1 May in Amsterdam
        "2020-04-30T23:30:00+01:00",
        "2020-05-01T23:59:59",  # no offset: the CRM's local time, the date as written
    ],
)
def test_a_date_with_a_time_and_an_offset_is_the_date_of_that_moment_in_amsterdam(write_csv, text):
    record = read_one(write_csv, "id,since", f"A1,{text}", fields={"signup_date": "since"})

    assert record.signup_date == date(2020, 5, 1)


def test_the_time_zone_dates_are_read_in_is_the_projects(settings):
    assert LOCAL_TIME_ZONE.key == settings.TIME_ZONE


@pytest.mark.parametrize("text", ["2020-13-01", "31-02-2020", "yesterday", "2025-01-01"])
def test_impossible_or_future_signup_dates_are_row_errors(write_csv, text):
    item = read_one(write_csv, "id,since", f"A1,{text}", fields={"signup_date": "since"})

    assert isinstance(item, RowError)


@pytest.mark.parametrize(("text", "bad"), [("1800-01-01", True), ("30-01-1924", True), ("31-01-1924", False)])
def test_a_signup_date_more_than_a_century_back_is_a_row_error_as_such_a_tenure_is(write_csv, text, bad):
    item = read_one(write_csv, "id,since", f"A1,{text}", fields={"signup_date": "since"})

    if bad:
        assert item == RowError(
            2, "A1", f"signup_date (column since): '{text}' is more than 1200 months (a century) before the as-of "
            f"date {AS_OF}"
        )  # fmt: skip
    else:
        # The signup date the longest tenure a row may give (1,200 months) counts back to.
        longest = read_one(write_csv, "id,tenure", "A1,1200", fields={"tenure_months": "tenure"})
        assert item.signup_date == longest.signup_date == date(1924, 1, 31)


@pytest.mark.parametrize(
    ("text", "segment"),
    [
        ("Business", "business"),
        ("zakelijk", "business"),
        ("B2B", "business"),
        ("SME", "business"),
        ("consumer", "consumer"),
        ("Residential", "consumer"),
        ("particulier", "consumer"),
        ("private", "consumer"),
        ("b2c", "consumer"),
        ("", "consumer"),
    ],
)
def test_segments_are_normalised(write_csv, text, segment):
    record = read_one(write_csv, "id,seg", f"A1,{text}", fields={"segment": "seg"})

    assert record.segment == segment


def test_the_segment_is_consumer_when_not_mapped(write_csv):
    assert read_one(write_csv, "id", "A1").segment == "consumer"


def test_an_unknown_segment_is_a_row_error(write_csv):
    item = read_one(write_csv, "id,seg", "A1,government", fields={"segment": "seg"})

    assert item == RowError(
        2,
        "A1",
        "segment (column seg): unknown segment 'government'; expected one of business, consumer (or a known synonym)",
    )


@pytest.mark.parametrize(
    ("text", "tier"),
    [("low", "low"), ("Laag", "low"), ("bronze", "low"), ("midden", "medium"), ("Silver", "medium"),
     ("HOOG", "high"), ("gold", "high"), ("", "")],
)  # fmt: skip
def test_value_tiers_are_normalised(write_csv, text, tier):
    record = read_one(write_csv, "id,tier", f"A1,{text}", fields={"value_tier": "tier"})

    assert record.value_tier == tier


def test_an_unknown_value_tier_is_a_row_error(write_csv):
    item = read_one(write_csv, "id,tier", "A1,platinum", fields={"value_tier": "tier"})

    assert isinstance(item, RowError)
    assert "unknown value tier 'platinum'" in item.message


def test_products_split_on_any_separator_into_lowercase(write_csv):
    record = read_one(write_csv, "id;prod", 'A1;"Internet + TV|Mobile, fixed;"', fields={"products": "prod"})

    assert record.products == ["internet", "tv", "mobile", "fixed"]


@pytest.mark.parametrize(
    "cell",
    ['"[""internet"",""tv""]"', "\"['Internet', 'TV']\"", '"{internet,tv}"', "[internet|tv]", '"""internet"" + tv"'],
    ids=["JSON", "Python", "database array", "brackets", "quoted"],
)
def test_products_written_as_a_list_give_their_items(write_csv, cell):
    record = read_one(write_csv, "id;prod", f"A1;{cell}", fields={"products": "prod"})

    assert record.products == ["internet", "tv"]


@pytest.mark.parametrize("cell", ['"[[""internet""],""tv""]"', '"[""internet"", ""tv"""', '"[""a\\""b""]"'])
def test_products_with_list_syntax_left_inside_an_item_are_a_row_error(write_csv, cell):
    item = read_one(write_csv, "id;prod", f"A1;{cell}", fields={"products": "prod"})

    assert isinstance(item, RowError)
    assert item.message.startswith("products (column prod): ")
    assert item.message.endswith("is not a product name; separate products with , ; + or |")


def test_text_fields_are_kept_stripped(write_csv):
    fields = {"display_name": "name", "phone": "tel", "region": "reg"}

    record = read_one(write_csv, "id,name,tel,reg", "A1, Jan de Vries ,+31 6 1234 5678,Utrecht", fields=fields)

    assert (record.display_name, record.phone, record.region) == ("Jan de Vries", "+31 6 1234 5678", "Utrecht")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-3", -3),
        ("0", 0),
        ("2.5", 2.5),
        ("2,5", 2.5),
        ("0,25", 0.25),
        (" Yes ", "Yes"),
        ("", None),
        ("   ", None),
        ("0031", "0031"),
        ("1.234,5", "1.234,5"),
        ("Fiber optic", "Fiber optic"),
        ("1000000000000000", 10**15),
        # Beyond any quantity: a SIM card's number, a name.
        ("89310410106543789301", "89310410106543789301"),
        ("-2000000000000000", "-2000000000000000"),
        ("99999999999999999999,5", "99999999999999999999,5"),
    ],
)
def test_attribute_values_are_numbers_when_they_look_numeric(text, value):
    parsed = attribute_value(text)

    assert parsed == value
    assert type(parsed) is type(value)


def test_a_fee_as_the_api_takes_it_is_the_most_a_file_may_give():
    assert parse_euros_to_cents("9999999,99") == 999_999_999
    with pytest.raises(ValueError, match="must be less than 10,000,000 euros"):
        parse_euros_to_cents("10000000")


def test_attribute_names_are_the_column_names(write_csv):
    record = read_one(write_csv, "id;Internet Service;Calls", "A1;DSL;4", attributes="*")

    assert record.attributes == {"Internet Service": "DSL", "Calls": 4}


def test_protected_columns_are_kept_apart_from_attributes(write_csv, telco_mapping):
    path = write_csv(HEADER, "A1,Male,1,1,One year,10,10,No,No")

    (record,) = read(path, telco_mapping)

    assert record.protected == {"gender": "Male", "SeniorCitizen": "1"}
    assert not set(record.attributes) & {"gender", "SeniorCitizen", "TotalCharges", "customerID", "tenure", "Churn"}


def test_excluded_columns_are_nowhere_on_the_record(write_csv, telco_mapping):
    path = write_csv(HEADER, "A1,Male,1,1,One year,10,999.99,No,No")

    (record,) = read(path, telco_mapping)

    assert "999.99" not in repr(record)


@pytest.mark.parametrize(
    ("cell", "renewals"),
    [
        ("Yes", [RenewalRecord("churned", AS_OF)]),
        (" yes ", [RenewalRecord("churned", AS_OF)]),
        ("No", [RenewalRecord("renewed", AS_OF)]),
        ("Unknown", [RenewalRecord("renewed", AS_OF)]),
        ("", []),
    ],
)
def test_the_label_becomes_a_renewal_result_dated_as_of(write_csv, cell, renewals):
    record = read_one(write_csv, "id,Churn", f"A1,{cell}", label={"column": "Churn", "churned": ["Yes"]})

    assert record.renewals == renewals


def test_several_churned_values_are_allowed(write_csv):
    label = {"column": "status", "churned": ["opgezegd", "left"]}
    path = write_csv("id,status", "A1,opgezegd", "A2,left", "A3,actief")

    results = [record.renewals[0].result for record in read(path, mapping_parse({"id": "id", "label": label}))]

    assert results == ["churned", "churned", "renewed"]


def test_with_the_renewed_values_listed_a_label_in_neither_list_makes_the_row_invalid(write_csv):
    label = {"column": "Churn", "churned": ["Yes"], "renewed": ["No"]}
    path = write_csv("id,Churn", "A1,yes", "A2,NO", "A3,Maybe", "A4,")

    items = read(path, mapping_parse({"id": "id", "label": label}))

    assert [item.renewals[0].result for item in items if isinstance(item, CustomerRecord) and item.renewals] == [
        "churned",
        "renewed",
    ]
    (error,) = [item for item in items if isinstance(item, RowError)]
    assert (error.line, error.external_id) == (4, "A3")
    assert "label (column Churn): 'Maybe' means neither churned nor renewed" in error.message
    assert [item.external_id for item in items if isinstance(item, CustomerRecord)] == ["A1", "A2", "A4"]


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ({"column": "Churn", "churned": ["Yes"], "renewed": []}, "'label.renewed' must list at least one value"),
        ({"column": "Churn", "churned": ["Yes"], "renewed": ["No", "yes"]}, "lists yes as both churned and renewed"),
        ({"column": "Churn", "churned": ["Yes"], "renewed": [True]}, "'label.renewed' value True was read as a yes/no"),
    ],
)
def test_a_renewed_list_that_cannot_work_is_refused(label, message):
    with pytest.raises(MappingError, match=message):
        mapping_parse({"id": "id", "label": label})


def test_row_errors_carry_the_physical_line_and_the_id(write_csv, telco_mapping):
    path = write_csv(
        HEADER,
        'A1,Male,0,1,"One\nyear",10,10,No,No',
        "A2,Male,0,x,One year,10,10,No,No",
        "",
        ",Male,0,1,One year,10,10,No,No",
        "A4,Male,0,1,One year",
    )

    items = read(path, telco_mapping)

    assert [item.line for item in items if isinstance(item, RowError)] == [2, 4, 6, 7]
    assert [item.external_id for item in items if isinstance(item, RowError)] == ["A1", "A2", "", "A4"]
    assert items[0].message == "a value runs over lines 2 to 3: a quote opened in it is not closed on its line"
    assert items[-1].message == "has 5 values where the header has 9"


def test_a_quote_left_open_takes_no_rows_of_other_customers_into_one_value(write_csv, telco_mapping):
    """Read loosely, the quote opened on A1's line ran on to the next quote, 3 lines further, and A2 and A3 were
    read as part of A1's contract type."""
    path = write_csv(
        HEADER,
        'A1,Male,0,1,"One year,10,10,No,No',
        "A2,Male,0,1,One year,10,10,No,No",
        "A3,Male,0,1,One year,10,10,No,No",
        'A4,Male,0,1,One year",10,10,No,No',
        "A5,Male,0,1,One year,10,10,No,No",
    )

    items = read(path, telco_mapping)

    assert [(item.line, item.external_id) for item in items if isinstance(item, RowError)] == [(2, "A1")]
    assert items[0].message.startswith("a value runs over lines 2 to 5")
    assert [item.external_id for item in items if not isinstance(item, RowError)] == ["A5"]


@pytest.mark.parametrize(
    ("last_row", "message"),
    [
        ('A3,Male,0,1,"One year,10,10,No,No', "line 4: a value opened with a quote on line 4 is never closed"),
        ('A3,Male,0,1,"One year"x,10,10,No,No', "line 4: a quote ends a value before the value does"),
    ],
)
def test_a_quote_never_closed_or_closed_inside_a_value_refuses_the_file_naming_the_line(
    write_csv, telco_mapping, last_row, message
):
    path = write_csv(HEADER, "A1,Male,0,1,One year,10,10,No,No", "A2,Male,0,1,One year,10,10,No,No", last_row)

    with pytest.raises(MappingError, match=message):
        read(path, telco_mapping)


def test_every_problem_of_a_row_is_reported_at_once(write_csv):
    fields = {"monthly_fee": "fee", "tenure_months": "tenure"}

    item = read_one(write_csv, "id,fee,tenure", "A1,lots,-2", fields=fields)

    assert "monthly_fee (column fee)" in item.message
    assert "tenure_months (column tenure)" in item.message


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_separated_files_are_read(write_csv, telco_mapping, delimiter):
    path = write_csv(
        HEADER.replace(",", delimiter), delimiter.join(["A1", "Male", "0", "1", "Two year", "29,85", "", "No", "Yes"])
    )

    (record,) = read(path, telco_mapping)

    assert record.contracts[0].monthly_fee_cents == 2985
    assert record.renewals[0].result == "churned"


def test_a_byte_order_mark_before_the_header_is_ignored(tmp_path, telco_mapping):
    path = tmp_path / "bom.csv"
    path.write_text(HEADER + "\nA1,Male,0,1,One year,10,10,No,No\n", encoding="utf-8-sig")

    (record,) = read(path, telco_mapping)

    assert record.external_id == "A1"


def test_rows_stream_in_file_order(write_csv):
    path = write_csv("id", *(f"C{n}" for n in range(50)))

    rows = read_mapped_rows(path, mapping_parse({"id": "id"}), as_of=AS_OF)

    assert next(rows).external_id == "C0"
    assert [record.external_id for record in rows] == [f"C{n}" for n in range(1, 50)]


def test_mapping_dict_stays_usable_for_other_tests():
    assert mapping_dict()["id"] == "customerID"


# ---------------------------------------------------------------------------------------------------------------
# Reading in chunks, column by column (what scoring a file uses)

RICH_HEADER = "id;name;seg;tier;since;tenure;fee;type;end;prod;reg;sex;churn;note;speed;score;postcode;mixed;big"
RICH_MAPPING = {
    "id": "id",
    "label": {"column": "churn", "churned": ["Yes"]},
    "fields": {"display_name": "name", "segment": "seg", "value_tier": "tier", "signup_date": "since",
               "tenure_months": "tenure", "monthly_fee": "fee", "contract_type": "type", "contract_end": "end",
               "products": "prod", "region": "reg"},
    "protected": ["sex"],
    "exclude": ["note"],
    "attributes": "*",
}  # fmt: skip
RICH_ROWS = [
    "A1; Jan ;Business;gold;;12;29,85;1 jaar;31-12-2024;Internet + TV;Utrecht;F;Yes;x;100;2,5;0031;4;1",
    "A2;;b2c;;2020-05-01;;€ 45;;;tv;;;No;;500;;1234;a;12345678901234567890",
    "A3;Piet;;Laag;;0;0;;;;Noord;M;;;;1.5;0031;;",
    "A4;;;;;twelve;abc;;;;;;;;100;;;;",  # two bad cells
    ";;;;;1;10;;;;;;;;100;;;;",  # no id
    "A6;;;;31-02-2020;1;10;;;;;;;;100;;;;",  # no such date
    "A7;;;;2030-01-01;;10;;;;;;;;100;;;;",  # signup after the as-of date
    "A8;;;;;1;;1 jaar;;;;;;;100;;;;",  # contract terms without a fee
    "A9;short",
    "",
    'A10;"multi\nline";government;;;1;10;;;;;;;;100;;;;',  # starts on one line, ends on the next
    "A11;;consumer;;;7;19.9951;maand;;mobile;Zuid;F;yes;;;;;2.5;",
]


def test_chunks_hold_the_same_records_and_errors_as_rows_read_one_by_one(write_csv):
    path = write_csv(RICH_HEADER, *RICH_ROWS)
    mapping = mapping_parse(RICH_MAPPING)
    expected = list(read_numbered_rows(path, mapping, as_of=AS_OF))

    for size in (1, 3, 100):
        chunks = list(read_mapped_chunks(path, mapping, as_of=AS_OF, chunk_rows=size))

        assert [pair for chunk in chunks for pair in chunk.numbered_items()] == expected
        assert [len(chunk) for chunk in chunks[:-1]] == [size] * (len(chunks) - 1)


def test_a_chunk_keeps_each_rows_line_id_and_problem(write_csv):
    path = write_csv(RICH_HEADER, *RICH_ROWS)

    (chunk,) = read_mapped_chunks(path, mapping_parse(RICH_MAPPING), as_of=AS_OF)

    assert chunk.lines == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14]
    assert chunk.external_ids.tolist() == ["A1", "A2", "A3", "A4", "", "A6", "A7", "A8", "A9", "A10", "A11"]
    assert chunk.good_rows().tolist() == [True, True, True] + [False] * 7 + [True]
    assert chunk.problems[3] == (
        "tenure_months (column tenure): 'twelve' is not a number; "
        "monthly_fee (column fee): 'abc' is not an amount in euros"
    )
    assert chunk.problems[8] == "has 2 values where the header has 19"
    assert chunk.good.external_id.tolist() == ["A1", "A2", "A3", "A11"]


@pytest.mark.parametrize("size", [1, 2, 100])
def test_frames_from_columns_equal_the_frames_from_records_value_for_value(write_csv, size):
    as_of = datetime(2024, 1, 31, 9, 30, tzinfo=UTC)
    path = write_csv(RICH_HEADER, *RICH_ROWS)

    for chunk in read_mapped_chunks(path, mapping_parse(RICH_MAPPING), as_of=AS_OF, chunk_rows=size):
        expected = records_to_frames(list(chunk.good.records()), as_of=as_of)

        for made, wanted in zip(mapped_frames(chunk.good, as_of=as_of), expected, strict=True):
            assert_same_frame(made, wanted)


@pytest.mark.parametrize(
    "cells",
    [
        ["1", "2"],  # whole numbers
        ["1", ""],  # whole numbers with a gap become floats
        ["1", "2,5"],  # floats
        ["1", "a"],  # text among numbers keeps them all as they are
        ["", ""],  # nothing at all
        ["12345678901234567890", "1"],  # too large for int64
        ["12345678901234567890", ""],
        ["-12345678901234567890", "1"],
    ],
)
def test_attribute_columns_get_the_dtype_pandas_gives_records(write_csv, cells):
    as_of = datetime(2024, 1, 31, tzinfo=UTC)
    path = write_csv("id,value", *(f"A{number},{cell}" for number, cell in enumerate(cells)))

    (chunk,) = read_mapped_chunks(path, mapping_parse({"id": "id", "attributes": "*"}), as_of=AS_OF)
    rows, _, _ = mapped_frames(chunk.good, as_of=as_of)

    assert_same_frame(rows, records_to_frames(list(chunk.good.records()), as_of=as_of)[0])


def test_a_file_without_fees_makes_no_contracts(write_csv):
    as_of = datetime(2024, 1, 31, tzinfo=UTC)
    path = write_csv("id,tenure", "A1,3", "A2,")

    (chunk,) = read_mapped_chunks(path, mapping_parse({"id": "id", "fields": {"tenure_months": "tenure"}}), as_of=AS_OF)
    frames = mapped_frames(chunk.good, as_of=as_of)

    for made, wanted in zip(frames, records_to_frames(list(chunk.good.records()), as_of=as_of), strict=True):
        assert_same_frame(made, wanted)
    assert frames[1].empty


def test_the_mapping_for_scoring_reads_the_same_rows_and_features_without_labels_or_protected_values(write_csv):
    as_of = datetime(2024, 1, 31, tzinfo=UTC)
    path = write_csv(RICH_HEADER, *RICH_ROWS)
    mapping = mapping_parse(RICH_MAPPING)

    (everything,) = read_mapped_chunks(path, mapping, as_of=AS_OF)
    (features,) = read_mapped_chunks(path, mapping.features_only(), as_of=AS_OF)

    assert features.problems.tolist() == everything.problems.tolist()
    made = mapped_frames(features.good, as_of=as_of)
    for made_frame, wanted_frame in zip(made, mapped_frames(everything.good, as_of=as_of), strict=True):
        assert_same_frame(made_frame, wanted_frame)
    assert features.good.protected == {}
    assert features.good.renewal.tolist() == [None] * 4


def test_rows_before_a_bad_byte_are_read_before_the_file_is_refused(tmp_path, telco_mapping):
    path = tmp_path / "latin1.csv"
    good_rows = "".join(f"A{number},Male,0,1,One year,10,10,No,No\n" for number in range(3000))
    path.write_bytes(f"{HEADER}\n{good_rows}B1,Caf\xe9,0,1,One year,10,10,No,No\n".encode("latin-1"))
    read = []

    with pytest.raises(MappingError, match="is not UTF-8 text on line 3002: byte 0xe9"):
        for item in read_mapped_rows(path, telco_mapping, as_of=AS_OF):
            read.append(item.external_id)

    # The text is decoded a block at a time, so the last rows before the bad byte go down with it.
    assert 2000 < len(read) < 3000
    assert read == [f"A{number}" for number in range(len(read))]


@pytest.mark.parametrize(("line", "rows"), [(1, 0), (3, 1), (5002, 5000)])
def test_a_byte_that_is_not_utf8_is_reported_on_its_own_line(tmp_path, telco_mapping, line, rows):
    path = tmp_path / "latin1.csv"
    good_rows = [f"A{number},Male,0,1,One year,10,10,No,No" for number in range(rows)]
    lines = [HEADER, *good_rows, "B1,Caf\xe9,0,1,One year,10,10,No,No", *good_rows[:200]]
    if line == 1:
        lines = [HEADER.replace("Partner", "Partn\xe9r"), *good_rows]
    path.write_bytes("\n".join(lines).encode("latin-1"))

    with pytest.raises(MappingError) as refused:
        list(read_mapped_rows(path, telco_mapping, as_of=AS_OF))

    assert str(refused.value) == (
        f"{path} is not UTF-8 text on line {line}: byte 0xe9, invalid continuation byte; save it as UTF-8"
    )


def assert_same_frame(made: pd.DataFrame, wanted: pd.DataFrame) -> None:
    """Equal values, dtypes and index, and in object columns the same Python types (an int is not a float)."""
    pd.testing.assert_frame_equal(made, wanted, check_exact=True)
    for name in wanted.columns[[dtype is np.dtype(object) for dtype in wanted.dtypes]]:
        assert list(map(type, made[name])) == list(map(type, wanted[name])), name


def test_a_file_to_score_may_lack_the_label_and_protected_columns_but_not_a_feature(write_csv):
    mapping = mapping_parse(mapping_dict())  # label Churn, protected gender and SeniorCitizen
    current = write_csv("customerID,tenure,Contract,MonthlyCharges,TotalCharges,Partner", "A1,12,One year,29.85,,Yes")
    no_fee = write_csv("customerID,tenure,Contract,TotalCharges,Partner", "A1,12,One year,,Yes")

    (features,) = read_mapped_chunks(current, mapping.features_only(), as_of=AS_OF)

    assert [record.external_id for record in features.good.records()] == ["A1"]
    with pytest.raises(MappingError, match="missing from the file's header: Churn, gender, SeniorCitizen"):
        list(read_mapped_chunks(current, mapping, as_of=AS_OF))
    with pytest.raises(MappingError, match="missing from the file's header: MonthlyCharges"):
        list(read_mapped_chunks(no_fee, mapping.features_only(), as_of=AS_OF))


@pytest.mark.parametrize(
    ("cell", "objection"), [("ja", True), ("Yes", True), ("1", True), ("nee", False), ("FALSE", False), ("", None)]
)
def test_an_objection_to_profiling_is_read_from_yes_or_no_words_and_an_empty_cell_says_nothing(
    write_csv, cell, objection
):
    record = read_one(write_csv, "id,bezwaar", f"K1,{cell}", fields={"objects_to_profiling": "bezwaar"})

    assert record.objects_to_profiling is objection


def test_an_objection_in_other_words_is_a_row_error_naming_the_words_it_takes(write_csv):
    error = read_one(write_csv, "id,bezwaar", "K1,misschien", fields={"objects_to_profiling": "bezwaar"})

    assert isinstance(error, RowError)
    assert error.message == (
        "objects_to_profiling (column bezwaar): unknown objection 'misschien'; expected one of yes, no "
        "(or a known synonym)"
    )
