"""Column mappings for CRM files: which column of a CSV export fills which part of a customer.

A mapping is a small YAML file that a CRM integrator writes once per export format:

    id: customerID                 # column with the customer's id
    label:                         # optional: the known outcome, used as training history
      column: Churn
      churned: ["Yes"]             # values meaning the customer left
    fields:                        # columns that fill core fields
      tenure_months: tenure
      monthly_fee: MonthlyCharges  # euros
      contract_type: Contract
    protected: [gender, SeniorCitizen]   # kept for fairness reports, never a model feature
    exclude: [TotalCharges]        # ignored
    attributes: "*"                # every other column is a model feature; or a list of columns

The core fields are display_name, phone, segment, value_tier, signup_date, tenure_months, monthly_fee,
contract_type, contract_end, products and region. An empty cell means "not known". A signup date wins over
tenure; a monthly fee makes the customer's one contract, which carries contract_type and contract_end.
Protected values are kept as text; attribute values become int or float when they look numeric. A label
value listed under `churned` (in any case) records a churn on the as-of date, any other value a renewal,
an empty cell nothing. Without `attributes`, columns not named anywhere are ignored.

This module is plain Python (no Django), so a file can be read and checked without a database;
storing the records is `retention.services.imports`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO

import yaml

# The month length the feature function uses to turn a signup date back into tenure.
from ml.features import DAYS_PER_MONTH
from retention.records import ContractRecord, CustomerRecord, RenewalRecord

CORE_FIELDS = (
    "display_name",
    "phone",
    "segment",
    "value_tier",
    "signup_date",
    "tenure_months",
    "monthly_fee",
    "contract_type",
    "contract_end",
    "products",
    "region",
)
TOP_LEVEL_KEYS = ("id", "label", "fields", "protected", "exclude", "attributes")
LABEL_KEYS = ("column", "churned")
ALL_OTHER_COLUMNS = "*"
DELIMITERS = (",", ";", "\t")

SEGMENT_WORDS = {
    "business": {
        "business", "zakelijk", "zakelijke", "b2b", "sme", "smb", "mkb", "soho", "zzp",
        "enterprise", "corporate", "company", "bedrijf", "commercial",
    },
    "consumer": {
        "consumer", "consument", "residential", "particulier", "particuliere", "private",
        "prive", "privé", "b2c", "retail", "personal", "individual",
    },
}  # fmt: skip
VALUE_TIER_WORDS = {
    "low": {"low", "laag", "bronze", "brons"},
    "medium": {"medium", "mid", "middle", "midden", "gemiddeld", "silver", "zilver"},
    "high": {"high", "hoog", "gold", "goud"},
}
PRODUCT_SEPARATORS = re.compile(r"[,;+|]")
INTEGER = re.compile(r"[+-]?(0|[1-9]\d*)")
DECIMAL = re.compile(r"[+-]?(0|[1-9]\d*)?[.,]\d+")
PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
DAY_FIRST_DATE = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")


class MappingError(ValueError):
    """A mapping that cannot be used, or a file that cannot be read with it; the message names the problem."""


@dataclass(frozen=True)
class Label:
    column: str
    churned: frozenset[str]  # case-folded

    def result(self, value: str) -> str | None:
        """'churned', 'renewed', or None for an empty cell (an unlabelled row)."""
        if not value:
            return None
        return "churned" if value.casefold() in self.churned else "renewed"


@dataclass(frozen=True)
class Mapping:
    id_column: str
    fields: dict[str, str] = field(default_factory=dict)  # core field name -> column
    label: Label | None = None
    protected: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    attributes: tuple[str, ...] | None = ()  # None: every column not named elsewhere

    def named_columns(self) -> list[str]:
        """Every column the mapping names explicitly, id first."""
        columns = [self.id_column]
        if self.label:
            columns.append(self.label.column)
        columns += [*self.fields.values(), *self.protected, *self.exclude, *(self.attributes or ())]
        return columns

    def attribute_columns(self, header: Sequence[str]) -> list[str]:
        """The columns of `header` that become model features, in file order."""
        if self.attributes is not None:
            return list(self.attributes)
        named = set(self.named_columns())
        return [column for column in header if column not in named]


@dataclass
class RowError:
    line: int  # physical line in the file where the row starts; the header is line 1
    external_id: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line} ({self.external_id or 'no id'}): {self.message}"


# ---------------------------------------------------------------------------------------------------------------
# Parsing the mapping


def mapping_load(path: str | Path) -> Mapping:
    """Read and check a YAML mapping file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MappingError(f"cannot read mapping {path}: {error.strerror or error}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise MappingError(f"mapping {path} is not valid YAML: {_one_line(error)}") from error
    try:
        return mapping_parse(data)
    except MappingError as error:
        raise MappingError(f"mapping {path}: {error}") from error


def mapping_parse(data: dict) -> Mapping:
    """Check a mapping given as a dict (as read from YAML) and return it parsed."""
    if not isinstance(data, dict):
        raise MappingError(f"a mapping must be a set of keys ({', '.join(TOP_LEVEL_KEYS)}), not {_kind(data)}")
    _refuse_unknown_keys(data, TOP_LEVEL_KEYS, where="the mapping")
    if "id" not in data:
        raise MappingError("the mapping has no 'id': name the column that holds the customer's id")
    attributes = data.get("attributes", [])
    mapping = Mapping(
        id_column=_column_name(data["id"], where="id"),
        fields=_parse_fields(data.get("fields") or {}),
        label=_parse_label(data["label"]) if data.get("label") is not None else None,
        protected=_column_list(data.get("protected") or [], where="protected"),
        exclude=_column_list(data.get("exclude") or [], where="exclude"),
        attributes=None if attributes == ALL_OTHER_COLUMNS else _column_list(attributes or [], where="attributes"),
    )
    _refuse_columns_named_twice(mapping)
    return mapping


def _parse_fields(data: object) -> dict[str, str]:
    if not isinstance(data, dict):
        raise MappingError(f"'fields' must map core field names to columns, not {_kind(data)}")
    unknown = [str(name) for name in data if name not in CORE_FIELDS]
    if unknown:
        raise MappingError(
            f"unknown field(s) under 'fields': {', '.join(unknown)}; the core fields are {', '.join(CORE_FIELDS)}"
        )
    return {name: _column_name(column, where=f"fields.{name}") for name, column in data.items()}


def _parse_label(data: object) -> Label:
    if not isinstance(data, dict):
        raise MappingError(f"'label' must have 'column' and 'churned', not {_kind(data)}")
    _refuse_unknown_keys(data, LABEL_KEYS, where="'label'")
    for key in LABEL_KEYS:
        if key not in data:
            raise MappingError(f"'label' needs '{key}'")
    churned = data["churned"] if isinstance(data["churned"], list) else [data["churned"]]
    if not churned:
        raise MappingError("'label.churned' must list at least one value meaning the customer left")
    return Label(
        column=_column_name(data["column"], where="label.column"),
        churned=frozenset(_label_value(value).casefold() for value in churned),
    )


def _label_value(value: object) -> str:
    # YAML reads an unquoted Yes/No/On/Off as a boolean, which loses how the file spells it.
    if isinstance(value, bool):
        raise MappingError(f"'label.churned' value {value} was read as a yes/no; quote it, e.g. [\"Yes\"]")
    if isinstance(value, (str, int)) and str(value).strip():
        return str(value).strip()
    raise MappingError(f"'label.churned' values must be text, not {_kind(value)}")


def _column_list(data: object, *, where: str) -> tuple[str, ...]:
    if isinstance(data, str):
        data = [data]
    if not isinstance(data, list):
        raise MappingError(f"'{where}' must be a list of columns, not {_kind(data)}")
    return tuple(_column_name(item, where=where) for item in data)


def _column_name(value: object, *, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise MappingError(f"'{where}' must be a column name, not {_kind(value)}")
    return str(value).strip()


def _refuse_unknown_keys(data: dict, known: Sequence[str], *, where: str) -> None:
    unknown = [str(key) for key in data if key not in known]
    if unknown:
        raise MappingError(f"unknown key(s) in {where}: {', '.join(unknown)}; expected {', '.join(known)}")


def _refuse_columns_named_twice(mapping: Mapping) -> None:
    places: dict[str, str] = {}
    for place, column in _column_places(mapping):
        if column in places:
            raise MappingError(f"column '{column}' is named twice: in {places[column]} and in {place}")
        places[column] = place


def _column_places(mapping: Mapping) -> Iterator[tuple[str, str]]:
    yield "id", mapping.id_column
    if mapping.label:
        yield "label.column", mapping.label.column
    for name, column in mapping.fields.items():
        yield f"fields.{name}", column
    for place in ("protected", "exclude", "attributes"):
        for column in getattr(mapping, place) or ():
            yield place, column


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"[:80]


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


# ---------------------------------------------------------------------------------------------------------------
# Reading a file with a mapping


def read_mapped_rows(path: str | Path, mapping: Mapping, *, as_of: date) -> Iterator[CustomerRecord | RowError]:
    """One CustomerRecord, or a RowError saying why not, per data row of a CSV file, in file order.

    Streams the file (constant memory). The header is checked before this returns: a mapped column
    that the header lacks raises MappingError at once. OSError propagates when the file cannot be opened.
    `as_of` is the date the file describes: tenure counts back from it and labels are dated on it.
    """
    return (item for _, item in read_numbered_rows(path, mapping, as_of=as_of))


def read_numbered_rows(
    path: str | Path, mapping: Mapping, *, as_of: date
) -> Iterator[tuple[int, CustomerRecord | RowError]]:
    """`read_mapped_rows` with the line each row starts on (the header is line 1), for reports on stored rows."""
    handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - the generator below closes it
    try:
        reader = csv.reader(handle, delimiter=_sniff_delimiter(handle))
        header = _read_header(reader, path)
        converter = RowConverter(mapping, header, as_of=as_of)
    except BaseException:
        handle.close()
        raise
    return _converted_rows(handle, reader, converter, path)


def _converted_rows(
    handle: IO[str], reader, converter: RowConverter, path: str | Path
) -> Iterator[tuple[int, CustomerRecord | RowError]]:
    with handle:
        previous_line = reader.line_num
        try:
            for cells in reader:
                line, previous_line = previous_line + 1, reader.line_num
                if cells:  # the csv module reads a blank line as an empty row; it is not a customer
                    yield line, converter.convert(cells, line=line)
        except UnicodeDecodeError as error:
            # The text is decoded ahead of the csv reader, so the bad byte is somewhere after this line.
            raise MappingError(f"{path} is not UTF-8 text after line {previous_line}: {_one_line(error)}") from error
        except csv.Error as error:
            raise MappingError(f"{path}: line {previous_line + 1}: {_one_line(error)}") from error


def _sniff_delimiter(handle: IO[str]) -> str:
    """The most frequent of , ; and tab in the first line (a comma when none appears)."""
    try:
        first_line = handle.readline()
    except UnicodeDecodeError as error:
        raise MappingError(f"{handle.name} is not UTF-8 text: {_one_line(error)}") from error
    handle.seek(0)
    counts = {delimiter: first_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _read_header(reader, path: str | Path) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise MappingError(f"{path} is empty: expected a header line with column names") from None
    except (csv.Error, UnicodeDecodeError) as error:
        raise MappingError(f"{path}: cannot read the header: {_one_line(error)}") from error
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise MappingError(f"{path}: the header names column(s) more than once: {', '.join(repeated)}")
    return header


class RowConverter:
    """Turns the cells of one data row into a CustomerRecord, or a RowError listing every problem found."""

    def __init__(self, mapping: Mapping, header: Sequence[str], *, as_of: date) -> None:
        self._refuse_missing_columns(mapping, header)
        position = {name: index for index, name in enumerate(header)}
        self.width = len(header)
        self.as_of = as_of
        self.mapping = mapping
        self.id_index = position[mapping.id_column]
        self.label_index = position[mapping.label.column] if mapping.label else None
        self.field_index = {name: position[column] for name, column in mapping.fields.items()}
        self.protected_index = [(column, position[column]) for column in mapping.protected]
        self.attribute_index = [(column, position[column]) for column in mapping.attribute_columns(header)]

    @staticmethod
    def _refuse_missing_columns(mapping: Mapping, header: Sequence[str]) -> None:
        if mapping.id_column not in header:
            raise MappingError(f"the id column '{mapping.id_column}' is not in the file's header ({', '.join(header)})")
        missing = [column for column in mapping.named_columns() if column not in header]
        if missing:
            raise MappingError(
                f"mapped column(s) missing from the file's header: {', '.join(missing)} "
                f"(the header has {', '.join(header)})"
            )

    def convert(self, cells: list[str], *, line: int) -> CustomerRecord | RowError:
        external_id = cells[self.id_index].strip() if self.id_index < len(cells) else ""
        if len(cells) != self.width:
            return RowError(line, external_id, f"has {len(cells)} values where the header has {self.width}")
        if not external_id:
            return RowError(line, "", f"the id column '{self.mapping.id_column}' is empty")
        values, problems = self._core_values(cells)
        record = CustomerRecord(external_id=external_id)
        # Checks across fields only make sense once each field has been read.
        problems = problems or _fill_core(record, values, as_of=self.as_of)
        if problems:
            return RowError(line, external_id, "; ".join(problems))
        record.protected = {column: cells[index].strip() or None for column, index in self.protected_index}
        record.attributes = {column: attribute_value(cells[index]) for column, index in self.attribute_index}
        record.renewals = self._renewals(cells)
        return record

    def _core_values(self, cells: list[str]) -> tuple[dict[str, object], list[str]]:
        values, problems = {}, []
        for name, index in self.field_index.items():
            try:
                values[name] = _FIELD_PARSERS[name](cells[index].strip(), self.as_of)
            except ValueError as error:
                problems.append(f"{name} (column {self.mapping.fields[name]}): {error}")
        return values, problems

    def _renewals(self, cells: list[str]) -> list[RenewalRecord]:
        if self.label_index is None:
            return []
        result = self.mapping.label.result(cells[self.label_index].strip())
        return [RenewalRecord(result=result, date=self.as_of)] if result else []


def _fill_core(record: CustomerRecord, values: dict[str, object], *, as_of: date) -> list[str]:
    """Put parsed core values on the record; the problems that only show across fields come back."""
    for name in ("display_name", "phone", "region", "segment", "value_tier", "products"):
        if values.get(name):
            setattr(record, name, values[name])
    # A signup date column, when mapped beside tenure, is the more exact of the two.
    record.signup_date = values.get("signup_date") or values.get("tenure_months")
    problems = []
    if record.signup_date and record.signup_date > as_of:
        problems.append(f"signup date {record.signup_date} is after the as-of date {as_of}")
    fee = values.get("monthly_fee")
    if fee is not None:
        contract = ContractRecord(
            monthly_fee_cents=fee, contract_type=values.get("contract_type") or "", end_date=values.get("contract_end")
        )
        record.contracts = [contract]
    elif values.get("contract_type") or values.get("contract_end"):
        problems.append("a contract type or end date is given without a monthly fee")
    return problems


# Each parser reads one stripped cell for a core field. An empty cell means "not known": None or "" comes
# back and the record keeps its default. A bad value raises ValueError with a message for whoever fixes the file.


def _text(value: str, as_of: date) -> str:
    return value


def _segment(value: str, as_of: date) -> str | None:
    return _normalised(value, SEGMENT_WORDS, what="segment") if value else None


def _value_tier(value: str, as_of: date) -> str | None:
    return _normalised(value, VALUE_TIER_WORDS, what="value tier") if value else None


def _date(value: str, as_of: date) -> date | None:
    return parse_date(value) if value else None


def _signup_from_tenure(value: str, as_of: date) -> date | None:
    if not value:
        return None
    months = parse_number(value)
    if months < 0:
        raise ValueError(f"{value!r} is negative")
    return as_of - timedelta(days=round(float(months) * DAYS_PER_MONTH))


def _euros(value: str, as_of: date) -> int | None:
    return parse_euros_to_cents(value) if value else None


def _products(value: str, as_of: date) -> list[str]:
    products = (part.strip().lower() for part in PRODUCT_SEPARATORS.split(value))
    return list(dict.fromkeys(product for product in products if product))


_FIELD_PARSERS = {
    "display_name": _text,
    "phone": _text,
    "region": _text,
    "segment": _segment,
    "value_tier": _value_tier,
    "signup_date": _date,
    "tenure_months": _signup_from_tenure,
    "monthly_fee": _euros,
    "contract_type": _text,
    "contract_end": _date,
    "products": _products,
}


def _normalised(value: str, words: dict[str, set[str]], *, what: str) -> str:
    key = value.casefold()
    for canonical, synonyms in words.items():
        if key in synonyms:
            return canonical
    raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(words)} (or a known synonym)")


# ---------------------------------------------------------------------------------------------------------------
# Values


def parse_number(text: str) -> Decimal:
    """A plain number with a decimal point or comma ("12", "12.5", "12,5")."""
    normalised = text.strip().replace(",", ".", 1) if text.count(",") == 1 and "." not in text else text.strip()
    if not PLAIN_NUMBER.fullmatch(normalised):
        raise ValueError(f"{text!r} is not a number")
    return Decimal(normalised)


def parse_euros_to_cents(text: str) -> int:
    """An amount in euros as whole cents: "29.85", "29,85", "€ 29,85", "1.234,50" and "1,234.50" all work.

    With both a point and a comma, the last one is the decimal separator and the other groups thousands.
    """
    cleaned = re.sub(r"(?i)€|eur\b|\s", "", text)
    if "," in cleaned and "." in cleaned:
        thousands = "," if cleaned.rfind(".") > cleaned.rfind(",") else "."
        cleaned = cleaned.replace(thousands, "")
    cleaned = cleaned.replace(",", ".")
    if not PLAIN_NUMBER.fullmatch(cleaned):
        raise ValueError(f"{text!r} is not an amount in euros")
    cents = (Decimal(cleaned) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if cents < 0:
        raise ValueError(f"{text!r} is negative")
    return int(cents)


def parse_date(text: str) -> date:
    """A date written as ISO (2024-03-31, also with a time) or day first (31-03-2024, 31/03/2024, 31.03.2024)."""
    text = text.strip()
    day_first = DAY_FIRST_DATE.fullmatch(text)
    try:
        if day_first:
            day, month, year = (int(part) for part in day_first.groups())
            return date(year, month, day)
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(f"{text!r} is not a date (use 2024-03-31 or 31-03-2024)") from None


def attribute_value(text: str) -> int | float | str | None:
    """A CRM value as a model feature: an int or float when it looks numeric, else the text; empty is None.

    Numbers with leading zeros ("0031", postcodes, codes) stay text: they are names, not quantities.
    """
    value = text.strip()
    if not value:
        return None
    if INTEGER.fullmatch(value):
        return int(value)
    if DECIMAL.fullmatch(value):
        return float(value.replace(",", "."))
    return value
