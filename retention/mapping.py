"""Column mappings for CRM files: which column of a CSV export fills which part of a customer.

A mapping is a small YAML file that a CRM integrator writes once per export format:

    id: customerID                 # column with the customer's id
    label:                         # optional: the known outcome, used as training history
      column: Churn
      churned: ["Yes"]             # values meaning the customer left
      renewed: ["No"]              # optional: values meaning the customer stayed
    fields:                        # columns that fill core fields
      tenure_months: tenure
      monthly_fee: MonthlyCharges  # euros
      contract_type: Contract
    protected: [gender, SeniorCitizen]   # kept for fairness reports, never a model feature
    exclude: [TotalCharges]        # ignored
    attributes: "*"                # every other column is a model feature; or a list of columns

The core fields are display_name, phone, segment, value_tier, signup_date, tenure_months, monthly_fee,
contract_type, contract_end, products, region and objects_to_profiling (yes/ja/true/1 or no/nee/false/0; an
empty cell keeps what is stored). An empty cell means "not known". A signup date wins over
tenure; either reaching back more than a century (MAX_TENURE_MONTHS) from the as-of date makes the row invalid,
as does an amount whose one separator may group thousands ("1.234"). A monthly fee makes the customer's one
contract, which carries contract_type and contract_end.
Protected values are kept as text; attribute values become int or float when they look numeric. A label
value listed under `churned` (in any case) records a churn on the as-of date, an empty cell nothing, and
any other value a renewal; with `renewed` listed too, a value in neither list makes the row invalid, so a
typo in the export cannot become a training label. Without `attributes`, columns not named anywhere are ignored.

A file is read in chunks of rows and converted column by column: each parser runs once per distinct
cell of a column, and the rows get their values by code. `read_mapped_rows` turns a chunk's columns into
records; scoring turns them straight into feature frames (`retention.mapping_frames`), so both read
a file the same way.

This module needs no Django, so a file can be read and checked without a database;
storing the records is `retention.services.imports`.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import yaml

from ml.schema import MAX_FEATURE_MAGNITUDE
from retention.records import (
    MAX_AMOUNT_CENTS,
    MAX_TENURE_DAYS,
    MAX_TENURE_MONTHS,
    ContractRecord,
    CustomerRecord,
    RenewalRecord,
    looks_protected,
    signup_from_tenure,
)

# The project's TIME_ZONE (config.settings, checked by a test), named here as this module reads no Django settings.
LOCAL_TIME_ZONE = ZoneInfo("Europe/Amsterdam")

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
    "objects_to_profiling",
)
TOP_LEVEL_KEYS = ("id", "label", "fields", "protected", "exclude", "attributes")
LABEL_KEYS = ("column", "churned")
OPTIONAL_LABEL_KEYS = ("renewed",)
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
# An objection to profiling is a legal fact: only these words are read as one, or as its absence.
OBJECTION_WORDS = {
    "yes": {"yes", "y", "ja", "j", "true", "waar", "1"},
    "no": {"no", "n", "nee", "false", "onwaar", "0"},
}
VALUE_TIER_WORDS = {
    "low": {"low", "laag", "bronze", "brons"},
    "medium": {"medium", "mid", "middle", "midden", "gemiddeld", "silver", "zilver"},
    "high": {"high", "hoog", "gold", "goud"},
}
PRODUCT_SEPARATORS = re.compile(r"[,;+|]")
# A list written as JSON (["internet","tv"]) or as a database array ({internet,tv}) is read for its items.
PRODUCT_LIST_BRACKETS = {"[": "]", "{": "}"}
PRODUCT_QUOTES = "\"'"
# What is left of such a list's syntax inside an item (nested lists, escaped quotes) is refused, not guessed at.
NOT_IN_A_PRODUCT = re.compile(r'[\[\]{}"\\]')
INTEGER = re.compile(r"[+-]?(0|[1-9]\d*)")
DECIMAL = re.compile(r"[+-]?(0|[1-9]\d*)?[.,]\d+")
PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
DAY_FIRST_DATE = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")
# One point or comma followed by three digits, after digits that could lead a group of thousands: Dutch exports
# group thousands with a point (1.234 is €1,234) and English ones with a comma, so the amount cannot be told.
# "0.125" or "1234.567" cannot be grouped thousands, so they stay decimals; "-1.234" is refused as negative.
AMBIGUOUS_AMOUNT = re.compile(r"\+?[1-9]\d{0,2}[.,]\d{3}")
# Bytes read at a time when looking for the line a byte that is not UTF-8 is on.
SCAN_BYTES = 1 << 20


class MappingError(ValueError):
    """A mapping that cannot be used, or a file that cannot be read with it; the message names the problem."""


@dataclass(frozen=True)
class Label:
    column: str
    churned: frozenset[str]  # case-folded
    renewed: frozenset[str] | None = None  # case-folded; None: every value not churned is a renewal

    def result(self, value: str) -> str | None:
        """'churned', 'renewed', or None for an empty cell (an unlabelled row).

        Raises ValueError for a value in neither list, when the mapping lists the renewed values.
        """
        if not value:
            return None
        if value.casefold() in self.churned:
            return "churned"
        if self.renewed is not None and value.casefold() not in self.renewed:
            raise ValueError(f"{value!r} means neither churned nor renewed in this mapping")
        return "renewed"


@dataclass(frozen=True)
class Mapping:
    id_column: str
    fields: dict[str, str] = field(default_factory=dict)  # core field name -> column
    label: Label | None = None
    protected: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    attributes: tuple[str, ...] | None = ()  # None: every column not named elsewhere
    # Named columns a file may lack: those a reader that only scores leaves unread anyway.
    may_be_absent: tuple[str, ...] = ()
    # Set when only scoring a file: the external ids whose objection to profiling is stored. A row whose customer
    # objected (in the file, or as stored) is then left unscored, as a row that cannot be read. None: an import,
    # which records objections rather than refusing them.
    objecting_ids: frozenset[str] | None = None
    # Set when only scoring a file while customers erased at their request are kept out: which of the ids given are
    # theirs. Such a row is left unscored too, as a row that cannot be read.
    erased_among: Callable[[Sequence[str]], set[str]] | None = None

    def named_columns(self) -> list[str]:
        """Every column the mapping names explicitly, id first."""
        columns = [self.id_column]
        if self.label:
            columns.append(self.label.column)
        columns += [*self.fields.values(), *self.protected, *self.exclude, *(self.attributes or ())]
        return columns

    def attribute_columns(self, header: Sequence[str]) -> list[str]:
        """The columns of `header` that become model features, in file order. `"*"` never takes a column named
        like a protected characteristic: that one is kept as protected instead (see `protected_columns`)."""
        if self.attributes is not None:
            return list(self.attributes)
        return [column for column in self._unnamed(header) if not looks_protected(column)]

    def protected_columns(self, header: Sequence[str]) -> list[str]:
        """The columns kept apart for fairness reports: those listed under `protected`, and with `"*"` every
        column not named elsewhere whose name is a protected characteristic's (gender, age, ...)."""
        if self.attributes is not None:
            return list(self.protected)
        return [*self.protected, *(column for column in self._unnamed(header) if looks_protected(column))]

    def _unnamed(self, header: Sequence[str]) -> list[str]:
        named = set(self.named_columns())
        return [column for column in header if column not in named]

    def features_only(
        self,
        *,
        objecting_ids: frozenset[str] = frozenset(),
        erased_among: Callable[[Sequence[str]], set[str]] | None = None,
    ) -> Mapping:
        """This mapping with its label and protected columns excluded: what scoring a file needs to read.

        Every row converts as with the full mapping (neither kind of column can make a row bad) and
        gets the same features; only the values that no model sees are left unread. A row whose customer
        objected to profiling, in the file or as stored (the external ids in `objecting_ids`), or who was erased at
        their request (the ids `erased_among` names), is not scored: it becomes a row left out, saying so.
        """
        label_columns = (self.label.column,) if self.label else ()
        unread = (*label_columns, *self.protected)
        # An export of current customers has no outcome column, and may leave out what only fairness reports use.
        return replace(
            self,
            label=None,
            protected=(),
            exclude=(*unread, *self.exclude),
            may_be_absent=unread,
            objecting_ids=objecting_ids,
            erased_among=erased_among,
        )


# Why a row of a customer who asked not to be scored has no score: it was read, and is left out at their wish.
NOT_SCORED_OBJECTED = "the customer objected to profiling: not scored"
NOT_SCORED_ERASED = "the customer was erased at their request: not scored"


def left_out_at_customers_wish(problem: str | None) -> bool:
    """Whether a row's problems are only that its customer objected to profiling or was erased at their request:
    such a row was read, and only their wish keeps it from a score."""
    return problem is not None and set(problem.split("; ")) <= {NOT_SCORED_OBJECTED, NOT_SCORED_ERASED}


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
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise MappingError(
            f"mapping {path} is not UTF-8 text on line {line}: byte 0x{error.object[error.start]:02x}; save it as UTF-8"
        ) from error
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
    _refuse_protected_features(mapping.attributes or ())
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
    _refuse_unknown_keys(data, (*LABEL_KEYS, *OPTIONAL_LABEL_KEYS), where="'label'")
    for key in LABEL_KEYS:
        if key not in data:
            raise MappingError(f"'label' needs '{key}'")
    churned = data["churned"] if isinstance(data["churned"], list) else [data["churned"]]
    if not churned:
        raise MappingError("'label.churned' must list at least one value meaning the customer left")
    renewed = data.get("renewed")
    if renewed is not None:
        renewed = renewed if isinstance(renewed, list) else [renewed]
        if not renewed:
            raise MappingError("'label.renewed' must list at least one value meaning the customer stayed")
    label = Label(
        column=_column_name(data["column"], where="label.column"),
        churned=frozenset(_label_value(value, key="churned").casefold() for value in churned),
        renewed=None if renewed is None else frozenset(_label_value(v, key="renewed").casefold() for v in renewed),
    )
    if label.renewed and label.churned & label.renewed:
        both = ", ".join(sorted(label.churned & label.renewed))
        raise MappingError(f"'label' lists {both} as both churned and renewed")
    return label


def _label_value(value: object, *, key: str) -> str:
    # YAML reads an unquoted Yes/No/On/Off as a boolean, which loses how the file spells it.
    if isinstance(value, bool):
        raise MappingError(f"'label.{key}' value {value} was read as a yes/no; quote it, e.g. [\"Yes\"]")
    if isinstance(value, (str, int)) and str(value).strip():
        return str(value).strip()
    raise MappingError(f"'label.{key}' values must be text, not {_kind(value)}")


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

# Rows converted together when a file is read row by row: enough for the column-wise work to pay off,
# few enough that a caller streaming the rows holds little.
READ_CHUNK_ROWS = 10_000


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
    chunks = read_mapped_chunks(path, mapping, as_of=as_of)
    return (numbered for chunk in chunks for numbered in chunk.numbered_items())


def read_mapped_chunks(
    path: str | Path, mapping: Mapping, *, as_of: date, chunk_rows: int = READ_CHUNK_ROWS
) -> Iterator[MappedChunk]:
    """The data rows of a CSV file in chunks of at most `chunk_rows`, each converted column by column, in file order.

    The rows, records and errors of `read_numbered_rows`, for callers that work on whole columns (scoring a
    file). Memory is bounded by the chunk size. The header is checked before this returns, as there.
    """
    if chunk_rows < 1:
        raise ValueError(f"a chunk needs at least 1 row, not {chunk_rows}")
    handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - the generator below closes it
    try:
        # Strict: a quote closed before its value ends, or one never closed, is an error, not text read on to the
        # next quote; read loosely, one stray quote took hundreds of rows into one customer's value without a word.
        reader = csv.reader(handle, delimiter=_sniff_delimiter(handle), strict=True)
        header = _read_header(reader, path)
        converter = ChunkConverter(mapping, header, as_of=as_of)
    except BaseException:
        handle.close()
        raise
    return _converted_chunks(handle, reader, converter, path, chunk_rows)


def _converted_chunks(
    handle: IO[str], reader, converter: ChunkConverter, path: str | Path, chunk_rows: int
) -> Iterator[MappedChunk]:
    with handle:
        block = RowBlock(converter.width)
        previous_line = reader.line_num
        try:
            for cells in reader:
                line, previous_line = previous_line + 1, reader.line_num
                if cells:  # the csv module reads a blank line as an empty row; it is not a customer
                    block.add(line, cells, last_line=previous_line)
                    if len(block) == chunk_rows:
                        # The cells are let go before the chunk is handed out: they are most of its memory.
                        chunk, block = converter.convert(block), RowBlock(converter.width)
                        yield chunk
        except (UnicodeDecodeError, csv.Error) as error:
            # The rows read before the fault go out first, so that they are reported as if read one by one.
            if len(block):
                yield converter.convert(block)
            raise _unreadable(path, error, after_line=previous_line, last_line=reader.line_num) from error
        if len(block):
            yield converter.convert(block)


def _unreadable(path: str | Path, error: Exception, *, after_line: int, last_line: int) -> MappingError:
    if isinstance(error, UnicodeDecodeError):
        return _not_utf8(path, after_line=after_line)
    first = after_line + 1
    where = f"line {first}" if last_line <= first else f"lines {first} to {last_line}"
    return MappingError(f"{path}: {where}: {_csv_fault(str(error), first)}")


def _csv_fault(message: str, line: int) -> str:
    """The csv module's words for a misplaced quote, said as what to look for in the file."""
    if message == "unexpected end of data":
        return f"a value opened with a quote on line {line} is never closed: the file ends inside it"
    if re.fullmatch(r"'.' expected after '\"'", message):
        return (
            f"a quote ends a value before the value does ({message}); a quote inside a value is written twice, "
            f"and a value opened with a quote on line {line} and not closed there runs on to the next quote"
        )
    return _one_line(message)


def _not_utf8(path: str | Path, *, after_line: int) -> MappingError:
    """The error for a file with a byte that is not UTF-8, naming the line the byte is on.

    The text is decoded ahead of the csv reader, a block of lines at a time, so the decoder's own error
    says neither the line nor where in the file: the bytes are looked at again, once, to find it.
    """
    try:
        found = _first_byte_not_utf8(path)
    except OSError:
        found = None
    if found is None:  # the file changed or went since: all that is known is where reading stopped
        return MappingError(f"{path} is not UTF-8 text after line {after_line}; save it as UTF-8")
    line, error = found
    byte = error.object[error.start]
    return MappingError(f"{path} is not UTF-8 text on line {line}: byte 0x{byte:02x}, {error.reason}; save it as UTF-8")


def _first_byte_not_utf8(path: str | Path) -> tuple[int, UnicodeDecodeError] | None:
    """The line (the first is 1) of the first byte of the file that is not UTF-8, with the decoder's error."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(SCAN_BYTES)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                # The error's bytes are the block, after at most three held over from the one before: the
                # start of a character cut at the block's end, never a newline, so no line is counted twice.
                return newlines + error.object[: error.start].count(b"\n") + 1, error
            if not block:
                return None
            newlines += block.count(b"\n")


def _sniff_delimiter(handle: IO[str]) -> str:
    """The most frequent of , ; and tab in the first line (a comma when none appears)."""
    try:
        first_line = handle.readline()
    except UnicodeDecodeError as error:
        raise _not_utf8(handle.name, after_line=0) from error
    handle.seek(0)
    counts = {delimiter: first_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _read_header(reader, path: str | Path) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise MappingError(f"{path} is empty: expected a header line with column names") from None
    except UnicodeDecodeError as error:
        raise _not_utf8(path, after_line=0) from error
    except csv.Error as error:
        raise MappingError(f"{path}: cannot read the header: {_one_line(error)}") from error
    if any("\x00" in name for name in header):
        raise MappingError(f"{path}: the header holds a NUL character (0x00); save the file without it")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise MappingError(f"{path}: the header names column(s) more than once: {', '.join(repeated)}")
    return header


def _refuse_protected_features(columns: Sequence[str]) -> None:
    """An attribute list naming a protected characteristic asks for what may not be: refused, naming it.
    (`attributes: "*"` keeps such a column as protected instead.)"""
    protected = [column for column in columns if looks_protected(column)]
    if protected:
        raise MappingError(
            f"column(s) {', '.join(protected)} would become model features but name protected characteristics: "
            "list them under `protected` (kept for fairness reports only) or under `exclude`"
        )


def _refuse_missing_columns(mapping: Mapping, header: Sequence[str]) -> None:
    if mapping.id_column not in header:
        raise MappingError(f"the id column '{mapping.id_column}' is not in the file's header ({', '.join(header)})")
    missing = [
        column for column in mapping.named_columns() if column not in header and column not in mapping.may_be_absent
    ]
    if missing:
        raise MappingError(
            f"mapped column(s) missing from the file's header: {', '.join(missing)} "
            f"(the header has {', '.join(header)})"
        )


@dataclass
class RowBlock:
    """Consecutive data rows as the csv module read them, laid out for taking whole columns.

    The cells of the rows as wide as the header lie end to end in one list: a list per row would be
    thousands of live containers, which the garbage collector walks again and again while a block fills.
    """

    width: int
    lines: list[int] = field(default_factory=list)  # where each row starts, in file order
    cells: list[str] = field(default_factory=list)  # the cells of the full-width rows, row after row
    # position in the block -> the cells of a row that is not read (another width, or one running over lines) and why
    misfits: dict[int, tuple[list[str], str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, line: int, cells: list[str], *, last_line: int | None = None) -> None:
        """A row starting on `line`; `last_line`, where the csv module finished it when a quoted value ran on."""
        if last_line is not None and last_line > line:
            # A CRM's fields hold no line breaks: a value running over lines is a quote left open, which took
            # the lines up to the next quote into this row.
            self.misfits[len(self.lines)] = (
                cells,
                f"a value runs over lines {line} to {last_line}: a quote opened in it is not closed on its line",
            )
        elif len(cells) == self.width:
            self.cells += cells
        else:
            self.misfits[len(self.lines)] = (cells, f"has {len(cells)} values where the header has {self.width}")
        self.lines.append(line)

    def column(self, index: int) -> np.ndarray:
        """The cells of one column over the full-width rows."""
        return np.fromiter(self.cells[index :: self.width], dtype=object, count=len(self.cells) // self.width)


@dataclass(frozen=True)
class CodedColumn:
    """A column as a code per row into its distinct values, so that each distinct cell is parsed only once."""

    codes: np.ndarray  # per row, an index into `values`
    values: np.ndarray  # objects: the parsed value of each distinct cell, None where it failed
    errors: np.ndarray  # objects: why each distinct cell could not be parsed, or None

    @classmethod
    def parse(cls, cells: np.ndarray, parse: Callable[[str], object]) -> CodedColumn:
        """`parse` each distinct cell; a ValueError it raises becomes that cell's error."""
        codes, distinct = pd.factorize(cells)
        values = np.full(len(distinct), None, dtype=object)
        errors = np.full(len(distinct), None, dtype=object)
        for index, cell in enumerate(distinct):
            try:
                values[index] = parse(cell)
            except ValueError as error:
                errors[index] = str(error)
        return cls(codes, values, errors)

    def failed(self) -> np.ndarray:
        """Per row, whether its cell could not be parsed."""
        return pd.notna(self.errors).take(self.codes)

    def error(self, row: int) -> str | None:
        return self.errors[self.codes[row]]

    def rows(self, *, default: object = None) -> np.ndarray:
        """Per row, the parsed value of its cell; `default` where that is None."""
        values = self.values
        if default is not None:
            values = values.copy()
            for index, value in enumerate(values):
                if value is None:
                    values[index] = default
        return values.take(self.codes)

    def select(self, rows: np.ndarray) -> CodedColumn:
        return CodedColumn(self.codes[rows], self.values, self.errors)


@dataclass
class MappedColumns:
    """What the records of some rows hold, one array per field, in row order.

    Core fields hold the record's own default where the file leaves them empty or unmapped; a row
    without a monthly fee has no contract, and one without a renewal result has no renewal.
    """

    as_of: date
    external_id: np.ndarray
    display_name: np.ndarray
    phone: np.ndarray
    segment: np.ndarray
    value_tier: np.ndarray
    signup_date: np.ndarray  # date or None
    region: np.ndarray
    products: np.ndarray  # lists, shared between rows with the same cell
    monthly_fee_cents: np.ndarray  # int or None
    contract_type: np.ndarray
    contract_end: np.ndarray  # date or None
    renewal: np.ndarray  # 'churned', 'renewed' or None
    objects_to_profiling: np.ndarray  # True, False or None (not said)
    protected: dict[str, np.ndarray]  # column -> text or None
    attributes: dict[str, CodedColumn]  # column -> int, float, text or None

    def __len__(self) -> int:
        return len(self.external_id)

    def records(self) -> Iterator[CustomerRecord]:
        """One CustomerRecord per row."""
        core = zip(*(getattr(self, name).tolist() for name in _RECORD_FIELDS), strict=True)
        contracts = map(_contracts, self.monthly_fee_cents, self.contract_type, self.contract_end)
        renewals = ([RenewalRecord(result=result, date=self.as_of)] if result else [] for result in self.renewal)
        protected = _row_dicts(self.protected, len(self))
        attributes = _row_dicts({column: values.rows() for column, values in self.attributes.items()}, len(self))
        per_row = zip(core, self.products, contracts, renewals, protected, attributes, strict=True)
        for values, products, contracts_, renewals_, protected_, attributes_ in per_row:
            yield CustomerRecord(
                **dict(zip(_RECORD_FIELDS, values, strict=True)),
                products=list(products),  # rows with the same cell share one parsed list; a record owns its own
                attributes=attributes_,
                protected=protected_,
                contracts=contracts_,
                renewals=renewals_,
            )


# The fields of a record that MappedColumns.records copies as they are.
_RECORD_FIELDS = (
    "external_id", "display_name", "phone", "segment", "value_tier", "signup_date", "region", "objects_to_profiling",
)  # fmt: skip


def _contracts(monthly_fee_cents: int | None, contract_type: str, end_date: date | None) -> list[ContractRecord]:
    if monthly_fee_cents is None:
        return []
    return [ContractRecord(monthly_fee_cents=monthly_fee_cents, contract_type=contract_type, end_date=end_date)]


def _row_dicts(columns: dict[str, np.ndarray], rows: int) -> Iterator[dict]:
    """One {column: value} per row."""
    if not columns:
        return ({} for _ in range(rows))
    names = list(columns)
    return (dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True))


@dataclass
class MappedChunk:
    """Consecutive data rows of a file: each row's line, id and problem, and the good rows' values by column."""

    lines: list[int]  # where each row starts; the header is line 1
    external_ids: np.ndarray  # per row; "" where the row has none
    problems: np.ndarray  # per row: every problem that keeps it from becoming a record, or None
    good: MappedColumns  # the rows without a problem, in row order

    def __len__(self) -> int:
        return len(self.lines)

    def good_rows(self) -> np.ndarray:
        """Per row, whether it has no problem (and so is one of `good`)."""
        return pd.isna(self.problems)

    def withheld_rows(self) -> np.ndarray:
        """Per row, whether it was read and is left out only at its customer's wish (`left_out_at_customers_wish`)."""
        return np.fromiter(map(left_out_at_customers_wish, self.problems), dtype=bool, count=len(self))

    def numbered_items(self) -> Iterator[tuple[int, CustomerRecord | RowError]]:
        """Each row's line with its record, or a RowError saying why it has none."""
        records = self.good.records()
        for line, external_id, problem in zip(self.lines, self.external_ids, self.problems, strict=True):
            yield line, next(records) if problem is None else RowError(line, external_id, problem)


# What a record holds for a core field that the file leaves empty (or does not map): the record's own default,
# and None for the values that make a contract.
_RECORD_DEFAULTS = {
    "display_name": "",
    "phone": "",
    "segment": "consumer",
    "value_tier": "",
    "region": "",
    "products": [],
    "monthly_fee": None,
    "contract_type": "",
    "contract_end": None,
    "objects_to_profiling": None,
}


class ChunkConverter:
    """Turns a block of data rows into a MappedChunk: record values column by column, or every problem of a row.

    Each parser runs once per distinct cell of its column, not once per row: CRM exports repeat a handful
    of values per column, so thousands of rows cost a few hundred parser calls.
    """

    def __init__(self, mapping: Mapping, header: Sequence[str], *, as_of: date) -> None:
        _refuse_missing_columns(mapping, header)
        self.mapping = mapping
        self.as_of = as_of
        self.width = len(header)
        self.position = {name: index for index, name in enumerate(header)}
        self.attribute_columns = mapping.attribute_columns(header)
        self.protected_columns = mapping.protected_columns(header)

    def convert(self, block: RowBlock) -> MappedChunk:
        id_index = self.position[self.mapping.id_column]
        ids = np.array([cell.strip() for cell in block.cells[id_index :: self.width]], dtype=object)
        fields = {
            name: self._parsed(block, column, _FIELD_PARSERS[name]) for name, column in self.mapping.fields.items()
        }
        values = self._record_values(fields, len(ids))
        label = self.mapping.label
        labels = self._parsed(block, label.column, lambda cell, _: label.result(cell)) if label else None
        problems = self._problems(ids, fields, values, labels)
        for row, columns in self._nul_cells(block).items():
            held = f"a NUL character (0x00) in column(s) {', '.join(columns)}: no database can store it"
            problems[row] = held if problems[row] is None else f"{problems[row]}; {held}"
        good = pd.isna(problems)
        external_ids, problems = self._with_misfits(block, ids, problems)
        good_columns = self._good_columns(block, ids, values, good, labels)
        return MappedChunk(lines=block.lines, external_ids=external_ids, problems=problems, good=good_columns)

    def _nul_cells(self, block: RowBlock) -> dict[int, list[str]]:
        """The full-width rows holding a NUL character, with the columns it is in: PostgreSQL refuses a whole batch
        over one, and SQLite stores it, so neither may see it. One search of the whole block finds none quickly."""
        if "\x00" not in "".join(block.cells):
            return {}
        names = list(self.position)
        found: dict[int, list[str]] = {}
        for index, cell in enumerate(block.cells):
            if "\x00" in cell:
                found.setdefault(index // self.width, []).append(names[index % self.width])
        return found

    def _parsed(self, block: RowBlock, column: str, parse: Callable[[str, date], object]) -> CodedColumn:
        as_of = self.as_of
        return CodedColumn.parse(block.column(self.position[column]), lambda cell: parse(cell.strip(), as_of))

    def _record_values(self, fields: dict[str, CodedColumn], rows: int) -> dict[str, np.ndarray]:
        """Per core field, what each full-width row's record holds; the signup date comes from either of two."""
        values = {
            name: fields[name].rows(default=default) if name in fields else _filled(rows, default)
            for name, default in _RECORD_DEFAULTS.items()
        }
        values["signup_date"] = _filled(rows, None)
        # A signup date column, when mapped beside tenure, is the more exact of the two.
        for name in ("tenure_months", "signup_date"):
            if name in fields:
                given = fields[name].rows()
                values["signup_date"] = np.where(pd.notna(given), given, values["signup_date"])
        return values

    def _problems(
        self,
        ids: np.ndarray,
        fields: dict[str, CodedColumn],
        values: dict[str, np.ndarray],
        labels: CodedColumn | None,
    ) -> np.ndarray:
        """Per full-width row, every problem that keeps it from becoming a record ('; '-joined), or None."""
        problems = np.full(len(ids), None, dtype=object)
        columns = {name: (self.mapping.fields[name], parsed) for name, parsed in fields.items()}
        if labels is not None:
            columns["label"] = (self.mapping.label.column, labels)
        unparsed = np.zeros(len(ids), dtype=bool)
        for _, parsed in columns.values():
            unparsed |= parsed.failed()
        for row in np.flatnonzero(unparsed):
            problems[row] = "; ".join(
                f"{name} (column {column}): {parsed.error(row)}"
                for name, (column, parsed) in columns.items()
                if parsed.error(row) is not None
            )
        # Checks across fields only make sense once each field has been read.
        for row, found in self._problems_across_fields(ids, values, ~unparsed):
            problems[row] = "; ".join(found)
        problems[ids == ""] = f"the id column '{self.mapping.id_column}' is empty"
        return problems

    def _problems_across_fields(
        self, ids: np.ndarray, values: dict[str, np.ndarray], rows: np.ndarray
    ) -> Iterator[tuple[int, list]]:
        """(row, its problems) for each of `rows` whose fields do not fit together."""
        signup = values["signup_date"]
        late = np.fromiter((day is not None and day > self.as_of for day in signup), dtype=bool, count=len(signup))
        terms = (values["contract_type"] != "") | pd.notna(values["contract_end"])
        terms_without_fee = terms & pd.isna(values["monthly_fee"])
        objecting = self._objecting(ids, values["objects_to_profiling"])
        erased = self._erased(ids, rows)
        for row in np.flatnonzero(rows & (late | terms_without_fee | objecting | erased)):
            found = []
            if late[row]:
                found.append(f"signup date {signup[row]} is after the as-of date {self.as_of}")
            if terms_without_fee[row]:
                found.append("a contract type or end date is given without a monthly fee")
            if objecting[row]:
                found.append(NOT_SCORED_OBJECTED)
            if erased[row]:
                found.append(NOT_SCORED_ERASED)
            yield row, found

    def _erased(self, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Per row (of `rows`), whether its customer was erased at their request; asked only when scoring."""
        lookup = self.mapping.erased_among
        if lookup is None or not rows.any():
            return np.zeros(len(ids), dtype=bool)
        return rows & np.isin(ids, list(lookup(list(ids[rows]))))

    def _objecting(self, ids: np.ndarray, said: np.ndarray) -> np.ndarray:
        """Per row, whether it is left unscored for an objection to profiling: one the file states, or one stored
        for its customer, which a file saying "no" does not lift when only scoring."""
        stored = self.mapping.objecting_ids
        if stored is None:
            return np.zeros(len(ids), dtype=bool)
        in_file = np.fromiter((value is True for value in said), dtype=bool, count=len(said))
        return in_file | np.isin(ids, list(stored))

    def _with_misfits(self, block: RowBlock, ids: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ids and problems of every row of the block: the rows of another width back in their places."""
        positions = sorted(block.misfits)
        misfits = [block.misfits[position] for position in positions]
        id_index = self.position[self.mapping.id_column]
        misfit_ids = [cells[id_index].strip() if id_index < len(cells) else "" for cells, _ in misfits]
        misfit_problems = [problem for _, problem in misfits]
        # np.insert places each value before the full-width row at that index, counted before any insertion.
        places = [position - earlier for earlier, position in enumerate(positions)]
        return np.insert(ids, places, misfit_ids), np.insert(problems, places, misfit_problems)

    def _good_columns(
        self,
        block: RowBlock,
        ids: np.ndarray,
        values: dict[str, np.ndarray],
        good: np.ndarray,
        labels: CodedColumn | None,
    ) -> MappedColumns:
        renewal = labels.rows() if labels is not None else None
        return MappedColumns(
            as_of=self.as_of,
            external_id=ids[good],
            display_name=values["display_name"][good],
            phone=values["phone"][good],
            segment=values["segment"][good],
            value_tier=values["value_tier"][good],
            signup_date=values["signup_date"][good],
            region=values["region"][good],
            products=values["products"][good],
            monthly_fee_cents=values["monthly_fee"][good],
            contract_type=values["contract_type"][good],
            contract_end=values["contract_end"][good],
            renewal=_filled(int(good.sum()), None) if renewal is None else renewal[good],
            objects_to_profiling=values["objects_to_profiling"][good],
            protected={
                column: self._parsed(block, column, _protected).rows()[good] for column in self.protected_columns
            },
            attributes={
                column: CodedColumn.parse(block.column(self.position[column]), attribute_value).select(good)
                for column in self.attribute_columns
            },
        )


def _protected(value: str, as_of: date) -> str | None:
    return value or None


def _filled(rows: int, value: object) -> np.ndarray:
    """`rows` times the same object (np.full would spread a list over the rows instead)."""
    array = np.empty(rows, dtype=object)
    array.fill(value)
    return array


# Each parser reads one stripped cell for a core field. An empty cell means "not known": None or "" comes
# back and the record keeps its default. A bad value raises ValueError with a message for whoever fixes the file.


def _text(value: str, as_of: date) -> str:
    return value


def _segment(value: str, as_of: date) -> str | None:
    return _normalised(value, SEGMENT_WORDS, what="segment") if value else None


def _value_tier(value: str, as_of: date) -> str | None:
    return _normalised(value, VALUE_TIER_WORDS, what="value tier") if value else None


def _objection(value: str, as_of: date) -> bool | None:
    return _normalised(value, OBJECTION_WORDS, what="objection") == "yes" if value else None


def _date(value: str, as_of: date) -> date | None:
    return parse_date(value) if value else None


def _signup_date(value: str, as_of: date) -> date | None:
    """A signup date, held to the century a tenure may count back (see MAX_TENURE_MONTHS)."""
    if not value:
        return None
    day = parse_date(value)
    if (as_of - day).days > MAX_TENURE_DAYS:
        raise ValueError(f"{value!r} is more than {MAX_TENURE_MONTHS} months (a century) before the as-of date {as_of}")
    return day


def _signup_from_tenure(value: str, as_of: date) -> date | None:
    if not value:
        return None
    months = parse_number(value)
    if months < 0:
        raise ValueError(f"{value!r} is negative")
    if months > MAX_TENURE_MONTHS:
        raise ValueError(f"{value!r} is more than {MAX_TENURE_MONTHS} months (a century)")
    return signup_from_tenure(float(months), as_of)


def _euros(value: str, as_of: date) -> int | None:
    return parse_euros_to_cents(value) if value else None


def _products(value: str, as_of: date) -> list[str]:
    """Products separated by , ; + or |, in lower case, each once; a list in brackets with quoted items
    (JSON's ["internet","tv"], a database array's {internet,tv}) gives its items."""
    products = (_product(part) for part in PRODUCT_SEPARATORS.split(_without_list_brackets(value)))
    return list(dict.fromkeys(product for product in products if product))


def _without_list_brackets(value: str) -> str:
    closing = PRODUCT_LIST_BRACKETS.get(value[:1])
    return value[1:-1] if closing and value.endswith(closing) else value


def _product(part: str) -> str:
    product = part.strip().strip(PRODUCT_QUOTES).strip().lower()
    if NOT_IN_A_PRODUCT.search(product):
        # A nested list, an escaped quote or an unclosed bracket: what the export meant is not clear.
        raise ValueError(f"{product!r} is not a product name; separate products with , ; + or |")
    return product


_FIELD_PARSERS = {
    "display_name": _text,
    "phone": _text,
    "region": _text,
    "segment": _segment,
    "value_tier": _value_tier,
    "signup_date": _signup_date,
    "tenure_months": _signup_from_tenure,
    "monthly_fee": _euros,
    "contract_type": _text,
    "contract_end": _date,
    "products": _products,
    "objects_to_profiling": _objection,
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
    One separator before exactly three digits ("1.234", "1,234") is refused as ambiguous (AMBIGUOUS_AMOUNT).
    """
    cleaned = re.sub(r"(?i)€|eur\b|\s", "", text)
    if AMBIGUOUS_AMOUNT.fullmatch(cleaned):
        separator = "." if "." in cleaned else ","
        decimal_mark = "," if separator == "." else "."
        raise ValueError(
            f"ambiguous amount {text!r} (thousands or decimals?): "
            f"write {cleaned.replace(separator, '')} or {cleaned}{decimal_mark}00"
        )
    if "," in cleaned and "." in cleaned:
        thousands = "," if cleaned.rfind(".") > cleaned.rfind(",") else "."
        cleaned = cleaned.replace(thousands, "")
    cleaned = cleaned.replace(",", ".")
    if not PLAIN_NUMBER.fullmatch(cleaned):
        raise ValueError(f"{text!r} is not an amount in euros")
    cents = (Decimal(cleaned) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if cents < 0:
        raise ValueError(f"{text!r} is negative")
    if cents >= MAX_AMOUNT_CENTS:
        raise ValueError(f"{text!r} must be less than {MAX_AMOUNT_CENTS // 100:,} euros")
    return int(cents)


def parse_date(text: str) -> date:
    """A date written as ISO (2024-03-31, also with a time) or day first (31-03-2024, 31/03/2024, 31.03.2024).

    A time with a UTC offset names a moment, whose date is the one in the project's time zone: a CRM exporting a
    contract's end as 2027-03-31T22:00:00Z means 1 April in Amsterdam, as 2027-04-01T00:00:00+02:00 does. A time
    without an offset is the CRM's local time, so the date is as written."""
    text = text.strip()
    day_first = DAY_FIRST_DATE.fullmatch(text)
    try:
        if day_first:
            day, month, year = (int(part) for part in day_first.groups())
            return date(year, month, day)
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            return moment.date()
        return moment.astimezone(LOCAL_TIME_ZONE).date()
    except ValueError:
        raise ValueError(f"{text!r} is not a date (use 2024-03-31 or 31-03-2024)") from None


def attribute_value(text: str) -> int | float | str | None:
    """A CRM value as a model feature: an int or float when it looks numeric, else the text; empty is None.

    Numbers with leading zeros ("0031", postcodes, codes) stay text: they are names, not quantities. So do numbers
    beyond MAX_FEATURE_MAGNITUDE (a SIM card's 19 or 20 digits): no quantity comes near them.
    """
    value = text.strip()
    if not value:
        return None
    if INTEGER.fullmatch(value):
        return _quantity_or_name(int(value), value)
    if DECIMAL.fullmatch(value):
        return _quantity_or_name(float(value.replace(",", ".")), value)
    return value


def _quantity_or_name(number: int | float, text: str) -> int | float | str:
    return number if abs(number) <= MAX_FEATURE_MAGNITUDE else text
