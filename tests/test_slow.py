"""End-to-end checks on the real embedded Gemma-3 270M backbone: `pytest -q -m slow` (about 9 minutes on 2 cores).

The main one runs the README's main job exactly (`bash scripts/train_mtl.sh`, default config) and checks that it
beats the trivial baselines on the sample's dev set.
"""

import json
import subprocess
from pathlib import Path

import pytest
from transformers import AutoConfig

from mtl.backbone import resolve
from mtl.config import load_config
from mtl.model import build_tokenizer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_embedded_backbone_is_the_real_gemma3_270m():
    folder = resolve("embedded:gemma3-270m")
    config = AutoConfig.from_pretrained(str(folder))
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.vocab_size) == \
        ("gemma3_text", 18, 640, 262144)
    pairs, _ = build_tokenizer(load_config())
    ids = pairs.tokenizer.encode("кухонная посуда 锅 フライパン 프라이팬 مقلاة", add_special_tokens=False)
    assert pairs.tokenizer.unk_token_id not in ids and len(ids) < 25


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("default")
    done = subprocess.run(["bash", "scripts/train_mtl.sh", f"log.root={root}", "log.run_name=default",
                           f"data.cache_dir={root / 'cache'}"], cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "default", done.stdout


def test_default_run_beats_the_trivial_baselines(default_run):
    run_dir, stdout = default_run
    summary = json.loads((run_dir / "metrics.json").read_text())
    for task in ("qc", "qi"):
        report = summary["best"]["reports"][task]
        baseline = report["baseline"]
        assert report["f1"] > max(baseline["f1_all_positive"], baseline["f1_majority"]) + 0.05, task
    assert "| AVG |" in stdout and "F1 by language" in stdout


def test_default_model_predicts_the_sample_test_files(default_run, tmp_path):
    run_dir, _ = default_run
    for task in ("QC", "QI"):
        source = ROOT / "data" / "sample" / f"test_{task}.txt"
        out = tmp_path / f"submit_{task}.txt"
        done = subprocess.run(["python", "-m", "mtl", "predict", "--model", str(run_dir / "best"), "--input",
                               str(source), "--output", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        expected = [json.loads(line)["id"] for line in source.read_text().splitlines()]
        assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == expected
