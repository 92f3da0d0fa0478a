"""Interruption, atomic outputs and fuzzed bad input."""

import json
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtl import checkpoint as checkpoint_module
from mtl import stages
from mtl.config import load_config
from mtl.data.records import read_records, write_records
from mtl.errors import DataError
from mtl.io import atomic_open
from tests.conftest import child_env, make_records, tiny_overrides, write_jsonl

LONG_RUN = {"train.max_steps": 120, "train.eval_every": 40, "log.every": 1, "train.save_every": 0}


def test_sigterm_checkpoints_and_resume_matches_an_uninterrupted_run(tiny_backbone, tiny_data, tmp_path):
    overrides = tiny_overrides(tiny_backbone, tiny_data, tmp_path, **LONG_RUN)
    straight = stages.run(load_config(None, overrides + ["log.run_name=straight"]))

    env = child_env(OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "mtl", "-q", "train", *overrides, "log.run_name=killed"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "runs" / "killed" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and log.read_text().count("\n") >= 5):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "continue with `mtl train --resume" in stderr
    checkpoints = sorted((tmp_path / "runs" / "killed").glob("step-*"))
    assert len(checkpoints) == 1 and not checkpoints[0].name.endswith(".tmp")
    stopped_at = int(checkpoints[0].name.split("-")[1])
    assert 0 < stopped_at < 120

    resumed = subprocess.run([sys.executable, "-m", "mtl", "-q", "train", "--resume", str(tmp_path / "runs" / "killed")],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads((tmp_path / "runs" / "killed" / "metrics.json").read_text())
    assert summary["steps"] == 120
    assert summary["best"]["headline"] == pytest.approx(straight["best"]["headline"], abs=1e-6)
    assert summary["final"]["headline"] == pytest.approx(straight["final"]["headline"], abs=1e-6)


def test_a_crash_while_writing_keeps_the_old_file(tmp_path):
    target = tmp_path / "submit.txt"
    target.write_text("old complete file\n")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half of the new")
            raise RuntimeError("crash")
    assert target.read_text() == "old complete file\n"
    assert list(tmp_path.iterdir()) == [target]


def test_a_crash_while_writing_records_leaves_no_file(tmp_path, monkeypatch):
    records, _ = read_records(write_jsonl(tmp_path / "in.txt", make_records("qi", 50)))
    calls = {"n": 0}
    real_dumps = json.dumps

    def dumps_then_crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:
            raise OSError("disk full")
        return real_dumps(*args, **kwargs)

    monkeypatch.setattr("mtl.data.records.json.dumps", dumps_then_crash)
    with pytest.raises(OSError):
        write_records(records, tmp_path / "out.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def interrupted_run(tmp_path):
    """A run folder holding a complete checkpoint and a later one whose writing was cut off."""
    run_dir = tmp_path / "runs" / "r"
    for name in ("step-000006", "step-000009.tmp"):
        (run_dir / name / "training").mkdir(parents=True)
    return run_dir


def test_a_stale_temporary_checkpoint_is_not_resumed_from(tmp_path):
    assert checkpoint_module.latest_checkpoint(interrupted_run(tmp_path)).name == "step-000006"


def test_resuming_removes_stale_temporary_checkpoints(tmp_path):
    run_dir = interrupted_run(tmp_path)
    checkpoint_module.prepare_run_dir(run_dir, load_config(), resume=True)
    assert not (run_dir / "step-000009.tmp").exists()
    assert (run_dir / "step-000006" / "training").is_dir()


FIELD_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
                         st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
FIELDS = ["id", "language", "origin_query", "category_path", "item_title", "label", "translated_query", "extra"]


def assert_clean_outcome(path):
    """Either records come back, or a DataError that names the file; nothing else may escape."""
    try:
        records, _ = read_records(path)
    except DataError as err:
        assert str(err).startswith(str(path))
        return None
    assert records["label"].isin([0, 1]).all() if "label" in records else True
    return records


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUES, max_size=8), min_size=1, max_size=5))
def test_fuzzed_json_records_load_or_fail_with_file_line_field(tmp_path, rows):
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert_clean_outcome(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_load_or_fail_with_the_file_name(tmp_path, data):
    for name in ("fuzz.txt", "fuzz.csv"):
        path = tmp_path / name
        path.write_bytes(data)
        assert_clean_outcome(path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.lists(st.text(max_size=12), min_size=0, max_size=7), min_size=1, max_size=5),
       bom=st.booleans(), crlf=st.booleans())
def test_fuzzed_csv_loads_or_fails_with_file_line(tmp_path, cells, bom, crlf):
    header = "id,language,origin_query,item_title,label"
    body = [",".join(c.replace(",", " ").replace("\n", " ").replace("\r", " ").replace('"', "") for c in row)
            for row in cells]
    text = ("\ufeff" if bom else "") + ("\r\n" if crlf else "\n").join([header, *body]) + "\n"
    path = tmp_path / "fuzz.csv"
    path.write_text(text, encoding="utf-8")
    assert_clean_outcome(path)


def test_huge_csv_field_is_reported_with_its_line(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("id,language,origin_query,item_title,label\n1,en,a,b,1\n2,en,\"" + "x" * 200_000 + "\",t,0\n")
    with pytest.raises(DataError, match=r"huge.csv:\d+: not valid CSV"):
        read_records(path)


def test_huge_json_line_is_read(tmp_path):
    row = {"id": 1, "language": "en", "origin_query": "q", "item_title": "t" * 1_000_000, "label": 1}
    path = write_jsonl(tmp_path / "huge.txt", [row])
    assert len(read_records(path)[0].loc[0, "item_title"]) == 1_000_000


def test_latin1_file_names_the_offending_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b'{"id": 1, "language": "es", "origin_query": "a", "item_title": "b", "label": 1}\n'
                     + '{"id": 2, "language": "es", "origin_query": "sartén", "item_title": "b", "label": 1}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt:2: not valid UTF-8"):
        read_records(path)


def test_extra_fields_are_kept_and_written_back(tmp_path):
    rows = [{"id": 1, "language": "en", "origin_query": "a", "item_title": "b", "label": 1, "source": "log-7"}]
    records, _ = read_records(write_jsonl(tmp_path / "in.txt", rows))
    write_records(records, tmp_path / "out.txt")
    assert json.loads((tmp_path / "out.txt").read_text())["source"] == "log-7"
