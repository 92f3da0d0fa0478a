"""Records: competition files (JSON lines or CSV) -> validated pandas DataFrame, and back.

    records, report = read_records("data/sample/train_QC.txt")          # task inferred from the columns
    records, dropped = clean_records(records, lowercase=True)           # the paper's cleaning, counted

Every problem in a file is reported as `file:line: field 'x': what is wrong` (a `DataError`), never as a traceback from
inside a parser. Normalisations (documented, not silent): a UTF-8 BOM and CRLF line ends are accepted; labels written
as 0/1, true/false, 0.0/1.0 or their strings become 0/1; numbers in text fields become strings; a null
`translated_query` becomes "". Rows with an empty query or target are dropped by `clean_records` and counted.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mtl.errors import DataError
from mtl.io import atomic_open

TARGET_FIELD = {"qc": "category_path", "qi": "item_title"}
BASE_FIELDS = ("id", "language", "origin_query")
OPTIONAL_FIELDS = ("label", "translated_query")
LINE = "_line"
"""Column holding each record's line (JSON lines) or row (CSV, header = row 1) in its file, for error messages."""

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
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "file not found")
    raw_rows = list(_read_csv(path) if path.suffix.lower() in (".csv", ".tsv") else _read_jsonl(path))
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
        row[LINE] = line
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
    empty_query = out["origin_query"].str.strip() == ""
    empty_target = ~empty_query & (out[target].str.strip() == "")
    out = out[~(empty_query | empty_target)].reset_index(drop=True)
    out.attrs.update(records.attrs)
    return out, {"an empty query": int(empty_query.sum()), f"an empty {target}": int(empty_target.sum())}


def load_task_records(path, task=None, require_label=True, collapse_spaces=True, lowercase=True):
    """read_records + clean_records, with the drops in the report: what training and evaluation read."""
    records, report = read_records(path, task, require_label)
    records, report.dropped = clean_records(records, collapse_spaces, lowercase)
    return records, report


def write_records(records: pd.DataFrame, path: str | Path) -> None:
    """Write records in the format the suffix implies (.csv/.tsv: CSV, else JSON lines), atomically."""
    path = Path(path)
    columns = [c for c in records.columns if c != LINE]
    rows = records[columns].to_dict(orient="records")
    with atomic_open(path) as f:
        if path.suffix.lower() in (".csv", ".tsv"):
            writer = csv.DictWriter(f, fieldnames=columns, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
        else:
            for row in rows:
                f.write(json.dumps(_jsonable(row), ensure_ascii=False) + "\n")


def _read_jsonl(path: Path):
    """Yield (line number, dict) for each non-blank line; decode line by line so a bad byte names its line."""
    with open(path, "rb") as f:
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
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(path, number, None, f"not valid JSON: {err.msg} (column {err.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(path, number, None, f"expected a JSON object, got {type(obj).__name__}")
            yield number, obj


def _read_csv(path: Path):
    """Yield (row number, dict); the header is row 1. csv rather than pandas so errors can name the row."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise DataError(path, line, None, f"not valid UTF-8 ({err.reason})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise DataError(path, 1, None, f"repeated column names in header {header}")
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise DataError(path, reader.line_num, None, f"{len(values)} values for {len(header)} columns")
            yield reader.line_num, dict(zip(header, values))
    except csv.Error as err:
        raise DataError(path, reader.line_num, None, f"not valid CSV: {err}") from None


def _validate(raw: dict, required, task, path, line) -> dict:
    for name in required:
        if name not in raw:
            raise DataError(path, line, name, "missing")
    row = dict(raw)
    row["id"] = _id(raw["id"], path, line)
    row["language"] = _text(raw["language"], path, line, "language")
    if not row["language"]:
        raise DataError(path, line, "language", "empty")
    for name in ("origin_query", TARGET_FIELD[task], "translated_query"):
        row[name] = _text(raw.get(name), path, line, name)
    if "label" in required or raw.get("label") not in (None, ""):
        row["label"] = _label(raw.get("label"), path, line)
    return row


def _id(value, path, line):
    if isinstance(value, bool) or value is None or (isinstance(value, float) and not value.is_integer()):
        raise DataError(path, line, "id", f"expected an integer or string id, got {value!r}")
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise DataError(path, line, "id", "empty")
        return int(value) if value.isdigit() and (value == "0" or not value.startswith("0")) else value
    if isinstance(value, int):
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


def _jsonable(row: dict) -> dict:
    """numpy scalars (from pandas) -> Python numbers so json.dumps accepts them."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
