"""Can translation augmentation be had offline? The embedded backbone prompted as `mtl translate --backend llm`.

    python benchmarks/translate_llm.py --name real-qc --input ../shared/data/real_QC_train.jsonl --per-language 24

No translation model installs here, so the only translator at hand is the embedded Gemma-3 270M (a base model: its
GGUF carries no chat template). This samples `--per-language` distinct queries of each non-English language that
`mtl translate` would send to a model (not already English-looking), translates them through `translate_file`
exactly as `mtl translate` does (no cache, so every text is generated), and writes
`benchmarks/results/translate-llm-<name>.md`: throughput on this machine and, per language, how often the reply is
empty, holds the whole query, opens with a "Label:", is ASCII, and how many of its words are common English
shopping words or brands. There are no reference translations to score against, so these are plausibility checks,
not BLEU; the queries and replies are not written (the data is not committed).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from mtl.data.records import read_records
from mtl.translate import BRANDS, ENGLISH_WORDS, looks_english, translate_file
from mtl.translate.backends import base_language


def sample(records: pd.DataFrame, per_language: int, seed: int) -> pd.DataFrame:
    """`per_language` distinct non-English queries per language, each once, that a model would be asked for."""
    rows = records[records["language"].map(base_language) != "en"].copy()
    rows["norm"] = rows["origin_query"].map(lambda s: " ".join(s.split()))
    rows = rows[~rows["norm"].map(looks_english) & (rows["norm"] != "")].drop_duplicates("norm")
    picked = [group.sample(min(per_language, len(group)), random_state=seed)
              for _, group in rows.groupby("language", sort=True)]
    return pd.concat(picked).drop(columns="norm")


def english_share(text: str) -> float:
    words = re.findall(r"[a-z0-9]+", text.lower())
    if not words:
        return 0.0
    return sum(w in ENGLISH_WORDS or w in BRANDS for w in words) / len(words)


def run(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="names the result file")
    parser.add_argument("--input", required=True, help="QC or QI records with non-English queries")
    parser.add_argument("--per-language", type=int, default=24)
    parser.add_argument("--backbone", default="embedded:gemma3-270m")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="benchmarks/results")
    args = parser.parse_args(argv)

    records, _ = read_records(args.input, None)
    picked = sample(records, args.per_language, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "sample.jsonl", Path(tmp) / "translated.jsonl"
        with source.open("w", encoding="utf-8") as f:
            for i, row in enumerate(picked.itertuples()):
                f.write(json.dumps({"id": i, "language": row.language, "origin_query": row.origin_query,
                                    "category_path": "x", "label": 1}, ensure_ascii=False) + "\n")
        start = time.monotonic()
        summary = translate_file(source, target, backend="llm", model=args.backbone, task="qc", cache_path=":memory:",
                                 batch_size=args.batch_size, progress=False)
        seconds = time.monotonic() - start
        out, _ = read_records(target, "qc")

    out["norm"] = out["origin_query"].map(lambda s: " ".join(s.split()).lower())
    out["reply"] = out["translated_query"].fillna("").map(lambda s: " ".join(s.split()))
    out["empty"] = out["reply"] == ""
    out["copy"] = [q in r.lower() for q, r in zip(out["norm"], out["reply"])]
    out["label"] = out["reply"].str.match(r"^[^\s:]+( [^\s:]+)?:")
    out["ascii"] = ~out["empty"] & out["reply"].map(str.isascii)
    out["english"] = out["reply"].map(english_share)
    out["tokens"] = out["reply"].map(lambda s: len(s.split()))
    rows = []
    for language, g in [*out.groupby("language", sort=True), ("all", out)]:
        rows.append(f"| {language} | {len(g)} | {g['empty'].mean():.2f} | {g['copy'].mean():.2f} | "
                    f"{g['label'].mean():.2f} | {g['ascii'].mean():.2f} | {g['english'].mean():.2f} | "
                    f"{g['tokens'].mean():.1f} |")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [f"# Translation by the embedded backbone: {args.name}", "",
             f"- command: `{shlex.join(['python', 'benchmarks/translate_llm.py', *argv])}` (code at {commit or '?'})",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; {platform.machine()}, {torch.get_num_threads()} threads",
             f"- model: `{summary['model_id']}` (`{args.backbone}`), greedy, prompted as that code's "
             f"`LLMTranslator.prompts` does, batches of {args.batch_size}",
             f"- {len(out)} distinct queries ({args.per_language} per language, seed {args.seed}) in "
             f"{seconds:.0f} s: {len(out) / seconds:.2f} queries/s", "",
             "Per language: share of replies that are empty, that hold the whole query (an echo, \"Search: "
             "<query>\"), that open with a one- or two-word label and a colon (\"Search:\", \"Portuguese:\"), "
             "that are ASCII; mean share of a reply's words that are common English shopping words or brands "
             "(`mtl.translate`'s lists; a good translation of a product query scores well below 1, its product words "
             "are often not listed); words per reply.", "",
             "| language | queries | empty | holds the query | \"Label:\" | ASCII | English words | words |",
             "|---|---:|---:|---:|---:|---:|---:|---:|", *rows, ""]
    path = Path(args.output_dir) / f"translate-llm-{args.name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(run(sys.argv[1:]))
