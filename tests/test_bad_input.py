"""Fuzzing every file the CLI reads: records (JSON lines, CSV), submissions, model.json, a run folder's metrics.json
/ experiment.json / config.yaml and a root's grid.json for the report, and config YAML. The property everywhere:
the file is read, or refused with an MtlError naming it; nothing else escapes, and what is read can be written."""

import csv
import io
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtl.cli import main
from mtl.config import load_config
from mtl.data.records import read_records, write_records
from mtl.errors import ConfigError, DataError, MtlError
from mtl.model import ModelInfo, read_info
from mtl.predict import read_predictions
from mtl.report import RunResult, read_grid, read_run, render
from tests.conftest import make_records, write_jsonl
from tests.test_predict import INFO
from tests.test_report import SINGLE_QC_SUMMARY

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

TEXT = st.text(st.characters(categories=["L", "N", "P", "Z", "Cc", "Cf", "Cs"]), max_size=12)
"""Text with whitespace, controls, zero-width characters and lone surrogates (json.dumps writes those as \\udxxx)."""
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=8)


def mutated(data, tree):
    """`tree` with one node, chosen by `data`, replaced by arbitrary JSON (or a key dropped)."""
    if not isinstance(tree, (dict, list)) or not tree or data.draw(st.booleans()):
        return data.draw(JSON)
    keys = list(tree) if isinstance(tree, dict) else list(range(len(tree)))
    key = data.draw(st.sampled_from(keys))
    out = dict(tree) if isinstance(tree, dict) else list(tree)
    if isinstance(out, dict) and data.draw(st.booleans()):
        del out[key]
    else:
        out[key] = mutated(data, out[key])
    return out


def duplicate_a_key(text: str, data) -> tuple[str, bool]:
    """`text` with a key of its first line's object repeated (JSON keeps the last silently), or as it was; and which."""
    try:
        first = json.loads(text.split("\n", 1)[0])
    except ValueError:
        first = None
    keys = sorted(first) if isinstance(first, dict) else []
    if not keys or not data.draw(st.booleans()):
        return text, False
    key = data.draw(st.sampled_from(keys))
    return text.replace("{", "{" + json.dumps(key) + ": 0, ", 1), True


@FUZZ
@given(data=st.data())
def test_fuzzed_records_load_and_write_back_or_fail_naming_the_file(tmp_path, data):
    rows = [mutated(data, row) if data.draw(st.booleans()) else row for row in make_records("qi", 4, seed=3)]
    text, duplicated = duplicate_a_key("".join(json.dumps(r) + "\n" for r in rows), data)
    path = tmp_path / "in.jsonl"
    path.write_text(text, encoding="utf-8")
    try:
        records, _ = read_records(path)
    except DataError as err:
        assert str(err).startswith(str(path))
        return
    assert not duplicated
    write_records(records, tmp_path / "out.jsonl")
    write_records(records, tmp_path / "out.csv")


CELL = st.text(st.sampled_from('ab é,"\n\r\t\u200b'), max_size=10)


@FUZZ
@given(cells=st.lists(st.tuples(CELL, CELL), min_size=1, max_size=6))
def test_any_valid_csv_reads_back_cell_for_cell(tmp_path, cells):
    """No silent loss: quotes, commas and line breaks inside cells come back exactly, one record per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "language", "origin_query", "item_title", "label"])
    writer.writerows([i, "en", query, title, i % 2] for i, (query, title) in enumerate(cells))
    path = tmp_path / "in.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    records, _ = read_records(path)
    assert list(zip(records["origin_query"], records["item_title"])) == cells


@FUZZ
@given(n=st.integers(2, 30), data=st.data())
def test_a_csv_quote_that_never_closes_is_refused_at_its_line(tmp_path, n, data):
    row, column = data.draw(st.integers(0, n - 1)), data.draw(st.sampled_from(["origin_query", "item_title"]))
    def cell(i, name, text):
        return ('"' if (i, name) == (row, column) else "") + text

    lines = ["id,language,origin_query,item_title,label"]
    lines += [f"{i},en,{cell(i, 'origin_query', f'query {i}')},{cell(i, 'item_title', f'title {i}')},{i % 2}"
              for i in range(n)]
    path = tmp_path / "in.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_records(path)
    assert (err.value.line, err.value.field) == (row + 2, column)


@FUZZ
@given(data=st.data())
def test_fuzzed_submissions_load_or_fail_naming_the_file(tmp_path, data):
    rows = [mutated(data, row) if data.draw(st.booleans()) else row for row in
            ({"id": i, "prediction": i % 2} for i in range(4))]
    path = tmp_path / "pred.txt"
    text, duplicated = duplicate_a_key("".join(json.dumps(r) + "\n" for r in rows), data)
    path.write_text(text, encoding="utf-8")
    try:
        predictions = read_predictions(path)
    except DataError as err:
        assert str(err).startswith(str(path))
        return
    assert not duplicated and predictions["prediction"].isin([0, 1]).all()


def check_types(info: ModelInfo) -> None:
    assert all(isinstance(t, str) for t in info.tasks) and isinstance(info.hidden_size, int)
    assert all(type(v) in (int, float) and 0 <= v <= 1 for v in info.thresholds.values())
    assert info.priors is None or isinstance(info.priors, dict)


@FUZZ
@given(data=st.data())
def test_a_fuzzed_model_json_is_read_with_its_declared_types_or_refused(tmp_path, data):
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    text, _ = duplicate_a_key(json.dumps(mutated(data, INFO)), data)
    if data.draw(st.booleans()):
        text = text[: data.draw(st.integers(0, len(text)))]
    (folder / "model.json").write_text(text, encoding="utf-8")
    try:
        info = read_info(folder)
    except MtlError as err:
        assert str(folder) in str(err)
        return
    check_types(info)


def run_folder(tmp_path, files: dict[str, str]):
    run_dir = tmp_path / "root" / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (run_dir / name).write_text(text, encoding="utf-8")
    return run_dir


EXPERIMENT = {"spec": {"name": "run", "kind": "train", "overrides": ["train.lr=1e-4"], "about": "x", "group": "main",
                       "source": "", "task": "", "baseline": ""},
              "wall_seconds": 10.0, "other_load": 0.5}
CONFIG = load_config()


@FUZZ
@given(data=st.data(), which=st.sampled_from(["metrics.json", "experiment.json", "config.yaml"]))
def test_a_fuzzed_run_folder_is_a_report_row_never_a_crash(tmp_path, data, which):
    from mtl.config import to_dict

    metrics = {**SINGLE_QC_SUMMARY, "unseen_languages": {"qc": ["pl"]}, "train_sizes": {"qc": 10},
               "task_steps": {"qc": 5}, "schedule": "00000"}
    trees = {"metrics.json": metrics, "experiment.json": EXPERIMENT, "config.yaml": to_dict(CONFIG)}
    files = {name: json.dumps(tree) for name, tree in trees.items()}  # JSON is YAML too
    text, _ = duplicate_a_key(json.dumps(mutated(data, trees[which])), data)
    if data.draw(st.booleans()):
        text = text[: data.draw(st.integers(0, len(text)))]
    files[which] = text
    run = read_run(run_folder(tmp_path, files))
    assert run.status in ("ok", "unreadable", "incomplete"), run
    if run.status == "unreadable":
        assert str(tmp_path / "root" / "run") in run.message
    render(tmp_path / "root", {}, {run.name: run, "other": RunResult("other", "missing")})


GRID = {"specs": [EXPERIMENT["spec"]], "systems": [["joint model", "run", "run"]], "base_overrides": [],
        "config_file": "", "budget": "B", "budget_steps": 160,
        "sessions": [{"command": "mtl compare", "machine": "m", "started": "t"}]}


@FUZZ
@given(data=st.data())
def test_a_fuzzed_grid_json_is_read_or_refused_naming_it_and_renders(tmp_path, data):
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / "grid.json").write_text(duplicate_a_key(json.dumps(mutated(data, GRID)), data)[0], encoding="utf-8")
    try:
        grid = read_grid(root)
    except MtlError as err:
        assert str(root / "grid.json") in str(err)
        return
    runs = {spec["name"]: RunResult(spec["name"], "missing", spec=spec) for spec in grid.get("specs", [])}
    render(root, grid, runs)


YAML_TEXT = st.text(st.sampled_from(string.ascii_lowercase[:6] + ':.-[]{}"\'\n #!&*|>=0123.e' + "\x00\x85\u2028"),
                    max_size=60)


@FUZZ
@given(text=YAML_TEXT | st.builds(lambda tree: json.dumps(tree), st.dictionaries(
    st.sampled_from(["train", "data", "cv", "log", "model", "zz"]),
    st.dictionaries(st.sampled_from(["seed", "lr", "fold", "n_folds", "run_name", "qc_train", "max_steps"]), JSON,
                    max_size=3) | JSON, max_size=3)))
def test_a_fuzzed_config_file_loads_or_fails_with_a_config_error(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except ConfigError as err:
        assert str(path) in str(err)


CORRUPTIONS = ['"', ",", "\r", "\n", "\\ud800", "\u200b", "\x00", "{", "}"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from([".txt", ".csv"]), data=st.data())
def test_split_refuses_a_corrupted_file_or_writes_every_record(tmp_path, suffix, data):
    """One character put anywhere in a valid file: `mtl split` exits 2 with one error line, or exits 0 having
    written every record (nothing swallowed, as a CSV quote that never closes would)."""
    rows = make_records("qi", 40, seed=4)
    if suffix == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    at = data.draw(st.integers(0, len(text)))
    text = text[:at] + data.draw(st.sampled_from(CORRUPTIONS)) + text[at:]
    source, out = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    source.write_text(text, encoding="utf-8")
    out.unlink(missing_ok=True)
    code = main(["split", "--input", str(source), "--output", str(out), "--n-folds", "2"])
    assert code in (0, 2)
    if code == 0:
        assert len(read_records(out)[0]) == len(rows)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200), suffix=st.sampled_from([".txt", ".csv"]),
       command=st.sampled_from(["split", "evaluate --pred", "evaluate --gold"]))
def test_the_cli_exits_0_or_2_on_any_bytes(tmp_path, data, suffix, command):
    """What the user sees: a result or one error line, never a traceback."""
    fuzzed = tmp_path / f"fuzz{suffix}"
    fuzzed.write_bytes(data)
    good = write_jsonl(tmp_path / "good.txt", make_records("qi", 30, seed=2))
    if command == "split":
        argv = ["split", "--input", str(fuzzed), "--output", str(tmp_path / "out.txt"), "--n-folds", "2"]
    elif command == "evaluate --pred":
        argv = ["evaluate", "--pred", str(fuzzed), "--gold", str(good)]
    else:
        argv = ["evaluate", "--pred", str(good), "--gold", str(fuzzed)]
    assert main(argv) in (0, 2)
