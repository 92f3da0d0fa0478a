"""Records: competition files (JSON lines or CSV) -> validated pandas DataFrame, and back.

    records, report = read_records("data/sample/train_QC.txt")          # task inferred from the columns
    records, dropped = clean_records(records, lowercase=True)           # the paper's cleaning, counted

Every problem in a file is reported as `file:line: field 'x': what is wrong` (a `DataError`), never as a traceback from
inside a parser. Normalisations (documented, not silent): a UTF-8 BOM and CRLF line ends are accepted; labels written
as 0/1, true/false, 0.0/1.0 or their strings become 0/1; numbers in text fields become strings; a null (or JSON NaN)
text field becomes "". Only an empty CSV cell is missing: a literal `NaN`, `null` or `None` is text (a product may be
called that). Rows with an empty query or target (nothing visible: only whitespace, zero-width or other invisible
characters, see `is_blank`; a category path of separators alone) are dropped by `clean_records` and counted. Refused besides the obvious: a key repeated
in one JSON object (JSON would keep the last), a lone UTF-16 surrogate (`"\\ud800"`: valid JSON, but no text) in
any string, and in CSV a quoted cell that never closes or has text after its closing quote.

Ids are kept exactly as given: a JSON string stays a string ("0042", "100"), a JSON integer an integer (a JSON number
with a zero fraction, 1.0, is the integer 1). CSV has no types, so a CSV `id`, `label` or `fold` cell that is a plain
integer (`100`, not `0042` or `+1`) is read as that integer, which writes back as the same text. Duplicates are found
by the id's text, so `"1"` and `1` in one file are the same id. Booleans and fractional numbers are refused.

`write_records` writes each row's fields as they were read (order, types, nulls and all), plus the columns the caller
added or changed (a `fold`, a filled `translated_query`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mtl.errors import DataError
from mtl.io import atomic_open, check_input_file, json_problem, loads_json, read_input_bytes
from mtl.taxonomy import parse_path

TARGET_FIELD = {"qc": "category_path", "qi": "item_title"}
BASE_FIELDS = ("id", "language", "origin_query")
OPTIONAL_FIELDS = ("label", "translated_query")
LINE = "_line"
"""Column holding each record's line (JSON lines) or row (CSV, header = row 1) in its file, for error messages."""
RAW = "_raw"
"""Column holding each record's fields exactly as parsed, so `write_records` can write back what it read."""
INTERNAL = (LINE, RAW)

_CSV_INT = re.compile(r"0|-?[1-9][0-9]{0,17}")
"""A CSV cell read as an integer: the canonical decimal form (str(int(cell)) == cell), within int64."""
_CSV_TYPED = ("id", "label", "fold")

_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
"""Unicode categories of characters that show nothing: a text made only of these is empty."""

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""What ends a line for the csv reader (it reads with universal newlines)."""

_LABELS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


@dataclass
class LoadReport:
    """What reading and cleaning one file did; printed by the CLI and kept in a run's metrics."""

    path: str
    task: str
    rows: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return self.rows - sum(self.dropped.values())

    def summary(self) -> str:
        parts = [f"{self.path}: {self.rows} {self.task.upper()} records"]
        parts += [f"dropped {n} with {why}" for why, n in self.dropped.items() if n]
        return ", ".join(parts)


def infer_task(fields, path="<input>") -> str:
    """`qc` if the records carry `category_path`, `qi` if `item_title`."""
    found = [task for task, name in TARGET_FIELD.items() if name in fields]
    if len(found) != 1:
        raise DataError(
            path, None, None,
            "cannot tell the task: records need exactly one of the fields 'category_path' (QC) or 'item_title' (QI)",
        )
    return found[0]


def read_records(path: str | Path, task: str | None = None, require_label: bool = False) -> tuple[pd.DataFrame, LoadReport]:
    """Read and validate a QC or QI file. Test files have no labels; `require_label` makes them mandatory."""
    path = check_input_file(path)
    raw_rows = list(_read_csv(path) if path.suffix.lower() in (".csv", ".tsv") else read_json_lines(path))
    if not raw_rows:
        raise DataError(path, None, None, "no records")
    task = task or infer_task(raw_rows[0][1].keys(), path)
    if task not in TARGET_FIELD:
        raise DataError(path, None, None, f"unknown task {task!r} (expected qc or qi)")
    has_label = require_label or "label" in raw_rows[0][1]
    required = (*BASE_FIELDS, TARGET_FIELD[task]) + (("label",) if has_label else ())

    rows, first_line_of_id = [], {}
    for line, raw in raw_rows:
        row = _validate(raw, required, task, path, line)
        key = str(row["id"])
        if key in first_line_of_id:
            raise DataError(path, line, "id", f"duplicate id {row['id']!r} (first seen on line {first_line_of_id[key]})")
        first_line_of_id[key] = line
        row[LINE], row[RAW] = line, raw
        rows.append(row)

    records = pd.DataFrame(rows)
    records.attrs["path"], records.attrs["task"] = str(path), task
    return records, LoadReport(str(path), task, rows=len(records))


def clean_records(records: pd.DataFrame, collapse_spaces: bool = True, lowercase: bool = True) -> tuple[pd.DataFrame, dict]:
    """The paper's cleaning: collapse redundant whitespace, lower-case; rows with an empty query or target are
    always dropped (a model cannot read them) and counted by reason."""
    task = records.attrs["task"]
    target = TARGET_FIELD[task]
    out = records.copy()
    for column in ("origin_query", target, "translated_query"):
        text = out[column].astype(str)
        if collapse_spaces:
            text = text.map(lambda s: " ".join(s.split()))
        if lowercase:
            text = text.str.lower()
        out[column] = text
    empty_query = out["origin_query"].map(is_blank)
    empty_target = ~empty_query & out[target].map(_no_category if task == "qc" else is_blank)
    out = out[~(empty_query | empty_target)].reset_index(drop=True)
    out.attrs.update(records.attrs)
    return out, {"an empty query": int(empty_query.sum()), f"an empty {target}": int(empty_target.sum())}


def is_blank(text: str) -> bool:
    """Whether `text` shows nothing: only whitespace and invisible characters (controls, and format characters such
    as zero-width space and joiner, word joiner, BOM, soft hyphen: Unicode categories Cc, Cf, Z*)."""
    if text.isprintable() and text.strip():  # the usual case, at C speed: some visible character
        return False
    return all(c.isspace() or unicodedata.category(c) in _INVISIBLE for c in text)


def _no_category(path: str) -> bool:
    """A category path with no level: blank, or only separators (`,`, ` , `)."""
    if is_blank(path):
        return True
    try:
        parse_path(path)
    except ValueError:
        return True
    return False


def load_task_records(path, task=None, require_label=True, collapse_spaces=True, lowercase=True):
    """read_records + clean_records, with the drops in the report: what training and evaluation read. A file whose
    every record is dropped is refused: there is nothing to train or validate on."""
    records, report = read_records(path, task, require_label)
    records, report.dropped = clean_records(records, collapse_spaces, lowercase)
    if records.empty:
        dropped = ", ".join(f"{n} with {why}" for why, n in report.dropped.items() if n)
        raise DataError(path, None, None, f"no usable records: all {report.rows} were dropped ({dropped})")
    return records, report


def write_records(records: pd.DataFrame, path: str | Path, columns: tuple[str, ...] = ()) -> None:
    """Write records in the format the suffix implies (.csv/.tsv: CSV, else JSON lines), atomically.

    A row read by `read_records` is written with its fields as read, plus the `columns` the caller added or filled
    (a `fold`, a `translated_query`) taken from the frame; a frame not from `read_records` is written whole. Missing
    values are left out (JSON) or empty (CSV), never NaN.
    """
    path = Path(path)
    rows = _output_rows(records, columns)
    with atomic_open(path) as f:
        if path.suffix.lower() in (".csv", ".tsv"):
            fieldnames = list(dict.fromkeys(name for row in rows for name in row))
            writer = csv.DictWriter(f, fieldnames=fieldnames, restval="",
                                    delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            writer.writeheader()
            writer.writerows({k: _csv_cell(v) for k, v in row.items()} for row in rows)
        else:
            for row in rows:
                f.write(json.dumps(_jsonable(row), ensure_ascii=False, allow_nan=False) + "\n")


def _output_rows(records: pd.DataFrame, columns: tuple[str, ...]) -> list[dict]:
    if RAW in records:
        raws = records[RAW].tolist()
    else:
        raws, columns = [{}] * len(records), [c for c in records.columns if c not in INTERNAL]
    values = {c: records[c].tolist() for c in columns}
    rows = []
    for i, raw in enumerate(raws):
        row = dict(raw)
        row.update({c: values[c][i] for c in columns if not _missing(values[c][i])})
        rows.append(row)
    return rows


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def read_json_lines(path: str | Path):
    """Yield (line number, dict) for each non-blank line; decode line by line so a bad byte names its line. Lines
    end at LF only (a CR alone is JSON whitespace, as every JSON parser reads it)."""
    path = check_input_file(path)
    try:
        f = open(path, "rb")
    except OSError as err:
        raise DataError(path, None, None, f"cannot read: {err.strerror or err}") from None
    with f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(path, number, None, f"not valid UTF-8 ({err.reason} at byte {err.start})") from None
            if number == 1:
                text = text.lstrip("\ufeff")
            text = text.strip()
            if not text:
                continue
            try:
                obj = loads_json(text, finite=True)
            except (ValueError, RecursionError) as err:
                _, key, problem = json_problem(err)
                raise DataError(path, number, key, problem) from None
            if not isinstance(obj, dict):
                raise DataError(path, number, None, f"expected a JSON object, got {type(obj).__name__}")
            yield number, obj


def _read_csv(path: Path):
    """Yield (row number, dict); the header is row 1. csv rather than pandas so errors can name the row. Strict
    CSV: a quoted cell must close, and nothing may follow its closing quote but a delimiter or the line end (a lax
    reader would make the rest of the file one cell, or drop the quotes of `"a"b`)."""
    data = read_input_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(path, line, None, f"not valid UTF-8 ({err.reason})") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as err:
        raise _csv_error(path, text, delimiter, 0, [], reader.line_num, err) from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise DataError(path, 1, None, f"repeated column names in header {header}")
    done = reader.line_num
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                done = reader.line_num
                continue
            if len(values) != len(header):
                raise DataError(path, reader.line_num, None, f"{len(values)} values for {len(header)} columns")
            row = dict(zip(header, values))
            for name in _CSV_TYPED:
                if name in row and _CSV_INT.fullmatch(row[name]):
                    row[name] = int(row[name])
            yield reader.line_num, row
            done = reader.line_num
    except csv.Error as err:
        raise _csv_error(path, text, delimiter, done, header, reader.line_num, err) from None


def _csv_error(path: Path, text: str, delimiter: str, done: int, header: list[str], line: int,
               err: csv.Error) -> DataError:
    """The DataError of a csv.Error raised on `line` in the row after line `done`. For an end of file inside quotes,
    it names the line and column where the unclosed quote opened: the row is re-read leniently, and each line break
    in its earlier cells (quoted, so part of a cell) moves the quote one line down."""
    if "unexpected end of data" not in str(err):
        if line > done + 1:  # the row took in line breaks: most often a quote on its first line that never closed
            return DataError(path, done + 1, None, f"not valid CSV: this row runs on to line {line} ({err} there): "
                                                   "a quoted cell here may open and never close")
        return DataError(path, line, None, f"not valid CSV: {err}")
    tail = "".join(list(io.StringIO(text, newline=""))[done:])
    cells = next(csv.reader(io.StringIO(tail, newline=""), delimiter=delimiter))
    line = done + 1 + sum(len(_LINE_BREAK.findall(cell)) for cell in cells[:-1])
    column = header[len(cells) - 1] if len(cells) <= len(header) else None
    return DataError(path, line, column, "not valid CSV: a quoted cell opens here and never closes (the end of the "
                                         "file comes inside its quotes)")


def _validate(raw: dict, required, task, path, line) -> dict:
    for name in required:
        if name not in raw:
            raise DataError(path, line, name, "missing")
    row = dict(raw)
    row["id"] = parse_id(raw["id"], path, line)
    row["language"] = _text(raw["language"], path, line, "language")
    if is_blank(row["language"]):
        raise DataError(path, line, "language", "empty")
    for name in ("origin_query", TARGET_FIELD[task], "translated_query"):
        row[name] = _text(raw.get(name), path, line, name)
    if "label" in required or raw.get("label") not in (None, ""):
        row["label"] = _label(raw.get("label"), path, line)
    return row


def parse_id(value, path, line):
    """The id as given (see the module docstring); only a whole JSON float becomes its integer."""
    if isinstance(value, bool) or value is None:
        raise DataError(path, line, "id", f"expected an integer or string id, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise DataError(path, line, "id", f"expected an integer or string id, got {value!r}")
    if isinstance(value, str):
        if not value.strip():
            raise DataError(path, line, "id", "empty")
        return value
    raise DataError(path, line, "id", f"expected an integer or string id, got {type(value).__name__}")


def _text(value, path, line, name) -> str:
    """Text fields: null/NaN -> "" (dropped later if it is the query or target); numbers -> their string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise DataError(path, line, name, f"expected text, got {type(value).__name__} {value!r}"[:200])
    return str(value)


def _label(value, path, line) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in _LABELS:
        return _LABELS[value.strip().lower()]
    raise DataError(path, line, "label", f"must be 0 or 1, got {value!r}"[:200])


def _jsonable(value):
    """numpy scalars (from pandas) -> Python numbers, NaN/inf (JSON has none) -> null, so the output is valid JSON."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _csv_cell(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, (dict, list, tuple, bool)):
        return json.dumps(_jsonable(value), ensure_ascii=False)
    return str(_jsonable(value))
