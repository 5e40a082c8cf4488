"""The mapping format is a contract CRM integrators write against: each way to get it wrong says what is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from retention.mapping import CORE_FIELDS, Label, Mapping, MappingError, mapping_load, mapping_parse, read_mapped_rows
from tests.imports.conftest import AS_OF, HEADER, mapping_dict

TELCO_MAPPING = Path(__file__).resolve().parents[2] / "fixtures" / "mappings" / "telco.yaml"


def test_telco_fixture_maps_the_ibm_sample_as_agreed():
    mapping = mapping_load(TELCO_MAPPING)

    assert mapping == Mapping(
        id_column="customerID",
        label=Label(column="Churn", churned=frozenset({"yes"}), renewed=frozenset({"no"})),
        fields={"tenure_months": "tenure", "monthly_fee": "MonthlyCharges", "contract_type": "Contract"},
        protected=("gender", "SeniorCitizen"),
        exclude=(),
        attributes=None,
    )


def test_every_other_column_becomes_an_attribute_with_a_star():
    mapping = mapping_parse(mapping_dict())

    assert mapping.attribute_columns(HEADER.split(",")) == ["Partner"]


def test_an_attribute_list_names_exactly_the_feature_columns():
    mapping = mapping_parse(mapping_dict(attributes=["Partner"]))

    assert mapping.attribute_columns([*HEADER.split(","), "Unlisted"]) == ["Partner"]


def test_without_attributes_unnamed_columns_are_ignored():
    data = mapping_dict()
    del data["attributes"]

    assert mapping_parse(data).attribute_columns(HEADER.split(",")) == []


def test_label_and_other_sections_are_optional():
    mapping = mapping_parse({"id": "customerID"})

    assert (mapping.label, mapping.fields, mapping.protected, mapping.exclude) == (None, {}, (), ())


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (mapping_dict(extra="x"), "unknown key(s) in the mapping: extra"),
        (
            mapping_dict(label={"column": "Churn", "churned": ["Yes"], "positive": 1}),
            "unknown key(s) in 'label': positive",
        ),
        (mapping_dict(fields={"tenure": "tenure"}), "unknown field(s) under 'fields': tenure"),
        (
            mapping_dict(fields={"monthly_fee": "MonthlyCharges", "price": "x"}),
            "unknown field(s) under 'fields': price",
        ),
    ],
)
def test_unknown_keys_at_any_level_are_refused_by_name(data, named):
    with pytest.raises(MappingError, match=re.escape(named)):
        mapping_parse(data)


def test_the_list_of_core_fields_is_given_when_a_field_is_unknown():
    with pytest.raises(MappingError) as raised:
        mapping_parse(mapping_dict(fields={"churn_score": "x"}))

    assert all(name in str(raised.value) for name in CORE_FIELDS)


def test_phone_is_a_core_field():
    assert mapping_parse(mapping_dict(fields={"phone": "Telefoon"})).fields == {"phone": "Telefoon"}


def test_a_mapping_without_id_is_refused():
    data = mapping_dict()
    del data["id"]

    with pytest.raises(MappingError, match="no 'id'"):
        mapping_parse(data)


@pytest.mark.parametrize(
    ("overrides", "column", "places"),
    [
        ({"exclude": ["customerID"]}, "customerID", "in id and in exclude"),
        ({"attributes": ["tenure"]}, "tenure", "in fields.tenure_months and in attributes"),
        ({"protected": ["gender", "gender"]}, "gender", "in protected and in protected"),
        ({"exclude": ["Churn"]}, "Churn", "in label.column and in exclude"),
        ({"fields": {"tenure_months": "tenure", "signup_date": "tenure"}}, "tenure", "fields.signup_date"),
    ],
)
def test_a_column_named_twice_is_refused_with_both_places(overrides, column, places):
    with pytest.raises(MappingError, match=f"column '{column}' is named twice.*{places}"):
        mapping_parse(mapping_dict(**overrides))


def test_an_unquoted_yes_in_churned_asks_for_quotes(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text("id: customerID\nlabel:\n  column: Churn\n  churned: [Yes]\n")

    with pytest.raises(MappingError, match="quote it"):
        mapping_load(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["id", "customerID"], "must be a set of keys"),
        (None, "must be a set of keys"),
        (mapping_dict(id=""), "'id' must be a column name"),
        (mapping_dict(fields=["tenure"]), "'fields' must map core field names"),
        (mapping_dict(fields={"monthly_fee": None}), "'fields.monthly_fee' must be a column name"),
        (mapping_dict(protected={"gender": 1}), "'protected' must be a list of columns"),
        (mapping_dict(label={"column": "Churn"}), "'label' needs 'churned'"),
        (mapping_dict(label={"column": "Churn", "churned": []}), "at least one value"),
        (mapping_dict(label="Churn"), "'label' must have 'column' and 'churned'"),
    ],
)
def test_malformed_mappings_are_refused_with_the_reason(data, message):
    with pytest.raises(MappingError, match=message):
        mapping_parse(data)


def test_a_mapping_file_that_is_not_yaml_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: [customerID\n")

    with pytest.raises(MappingError, match=r"broken\.yaml is not valid YAML"):
        mapping_load(path)


def test_a_mapping_file_that_is_not_utf8_is_refused_naming_the_line_and_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"id: customerID\nfields:\n  region: r\xe9gion\n")

    with pytest.raises(MappingError, match=r"latin1\.yaml is not UTF-8 text on line 3: byte 0xe9"):
        mapping_load(path)


def test_a_missing_mapping_file_is_refused_naming_the_file(tmp_path):
    with pytest.raises(MappingError, match=r"cannot read mapping .*absent\.yaml"):
        mapping_load(tmp_path / "absent.yaml")


def test_a_file_without_the_id_column_is_refused_before_any_row_is_read(write_csv, telco_mapping):
    path = write_csv(HEADER.replace("customerID", "klantnummer"), "A1,Male,0,1,One year,10,10,No,No")

    with pytest.raises(MappingError, match="the id column 'customerID' is not in the file's header"):
        read_mapped_rows(path, telco_mapping, as_of=AS_OF)


def test_a_file_without_a_mapped_column_is_refused_naming_it(write_csv, telco_mapping):
    path = write_csv(HEADER.replace(",TotalCharges", "").replace(",Churn", ""))

    with pytest.raises(MappingError, match="missing from the file's header: Churn, TotalCharges"):
        read_mapped_rows(path, telco_mapping, as_of=AS_OF)


def test_a_header_naming_a_column_twice_is_refused(write_csv, telco_mapping):
    path = write_csv(HEADER + ",Partner")

    with pytest.raises(MappingError, match="more than once: Partner"):
        read_mapped_rows(path, telco_mapping, as_of=AS_OF)


def test_a_protected_characteristic_the_star_would_take_is_kept_as_protected_instead(write_csv):
    mapping = mapping_parse(mapping_dict(protected=["SeniorCitizen"]))  # gender forgotten
    path = write_csv(HEADER, "A1,Male,0,1,One year,10,10,No,No")

    [record] = list(read_mapped_rows(path, mapping, as_of=AS_OF))

    assert mapping.attribute_columns(HEADER.split(",")) == ["Partner"]
    assert record.protected == {"SeniorCitizen": "0", "gender": "Male"}
    assert "gender" not in record.attributes


def test_an_attribute_list_naming_a_protected_characteristic_is_refused_on_load():
    with pytest.raises(MappingError, match="Age band would become model features"):
        mapping_parse(mapping_dict(attributes=["Partner", "Age band"]))


def test_an_empty_file_is_refused(tmp_path, telco_mapping):
    path = tmp_path / "empty.csv"
    path.write_text("")

    with pytest.raises(MappingError, match="is empty"):
        read_mapped_rows(path, telco_mapping, as_of=AS_OF)
