"""Does the backbone know, untrained, which categories a query belongs to? Its own language-model head, zero-shot.

    flock /tmp/mtl-heavy.lock python benchmarks/lm_pmi.py --name real-qc-fold0 --config configs/real_cpu.yaml \
        --fold 0 [--oof <QC fold-0 run>/oof_qc.jsonl] data.qc_train=../shared/data/real_QC_train.jsonl

Each QC pair is scored by the log-probability the causal LM (`model.backbone`, all its layers whatever
`model.num_layers` says, no adapter, no training) gives the category path after `TEMPLATE` with the query, less the
same after an empty query: the pointwise mutual information of path and query, summed over the path's tokens (and
over the last level's alone: most negatives pair a query with a sibling of its category). A fine-tuned classifier
reads the backbone's hidden states, not its next-token predictions; if the model held brand and product knowledge
that fine-tuning fails to reach, this score would rank pairs well and add to the fold model's. With `--oof` (the fold
run's out-of-fold scores), the two rankings averaged are scored too. Same records, split and test carve as
`mtl train --mode single --task qc --fold K`. Writes `benchmarks/results/lm-pmi-<name>.md`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtl.backbone import resolve
from mtl.io import atomic_write_text
from overlap_baseline import auc_cell, fold_records, rank_average, scores_beside

TEMPLATE = "Search query: {query}\nCategory: "
BATCH = 32


def path_logprobs(model, tokenizer, prefixes: list[str], paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the summed log-probability of the path's tokens after its prefix, and of the last level's tokens.
    The head runs only on the path's positions: the 262,144-token vocabulary at every position of a batch would not
    fit in memory."""
    total, leaf = [], []
    for start in range(0, len(prefixes), BATCH):
        rows, spans = [], []
        for prefix, path in zip(prefixes[start:start + BATCH], paths[start:start + BATCH]):
            head = tokenizer(prefix)["input_ids"]
            body = tokenizer(path, add_special_tokens=False, return_offsets_mapping=True)
            cut = path.rfind(",") + 1  # the last level starts after the last comma
            first_leaf = next((j for j, (_, end) in enumerate(body["offset_mapping"]) if end > cut),
                              len(body["input_ids"]) - 1)
            rows.append(head + body["input_ids"])
            spans.append((len(head), len(head) + first_leaf))
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), tokenizer.pad_token_id)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, row in enumerate(rows):  # right padding: a row's positions do not move
            ids[k, :len(row)], mask[k, :len(row)] = torch.tensor(row), 1
        with torch.no_grad():
            hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            for k, row in enumerate(rows):
                begin, leaf_begin = spans[k]
                logits = model.lm_head(hidden[k, begin - 1:len(row) - 1]).float()
                picked = torch.log_softmax(logits, -1).gather(1, torch.tensor(row[begin:])[:, None])[:, 0].numpy()
                total.append(picked.sum())
                leaf.append(picked[leaf_begin - begin:].sum())
    return np.array(total), np.array(leaf)


def pmi(model, tokenizer, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with columns pmi and pmi_leaf (each path's no-query term computed once)."""
    paths = frame["category_path"].tolist()
    with_query = path_logprobs(model, tokenizer, [TEMPLATE.format(query=q) for q in frame["origin_query"]], paths)
    unique = sorted(set(paths))
    alone = dict(zip(unique, zip(*path_logprobs(model, tokenizer, [TEMPLATE.format(query="")] * len(unique), unique))))
    return frame.assign(pmi=with_query[0] - np.array([alone[p][0] for p in paths]),
                        pmi_leaf=with_query[1] - np.array([alone[p][1] for p in paths]))


def run(argv: list[str]) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--oof", help="the fold run's oof_qc.jsonl: its scores beside this one's")
    known, rest = extra.parse_known_args(argv)
    args, cfg, _, val, test = fold_records(rest, "qc", __doc__.splitlines()[0])
    beside = scores_beside(known.oof, val, f"validation records of fold {args.fold}", "out-of-fold")  # before scoring
    started = time.monotonic()
    folder = resolve(cfg.model.backbone)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    scored = {"validation": pmi(model, tokenizer, val), "test": pmi(model, tokenizer, test)}
    seconds = time.monotonic() - started
    rows = [f"| {part} | {len(frame):,} | {auc_cell(frame['label'], frame['pmi'])} | "
            f"{auc_cell(frame['label'], frame['pmi_leaf'])} |"
            for part, frame in scored.items()]
    lines = [f"# The backbone's language-model head, zero-shot, on QC: {args.name}", "",
             f"- command: `{shlex.join(['python', 'benchmarks/lm_pmi.py', *argv])}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; {seconds:.0f} s on {torch.get_num_threads()} threads",
             f"- `{cfg.model.backbone}`, all layers, float32; template {TEMPLATE!r}; PMI = log P(path | query) - "
             "log P(path | empty query), summed over the path's tokens (leaf: the last level's tokens)", "",
             "| pairs | n | AUC, PMI of the path | AUC, PMI of the last level |", "|---|---:|---:|---:|", *rows, ""]
    if beside is not None:
        pmi_scores = scored["validation"]["pmi"].to_numpy()  # `pmi` keeps `val`'s order, as `beside` does
        lines += [f"Beside the fold model's out-of-fold scores (`{known.oof}`), {len(beside):,} validation pairs: "
                  f"the model alone AUC {auc_cell(beside['label'], beside['score'])}; ranks averaged with the path's "
                  "PMI at weight:", "", "| PMI's weight | AUC |", "|---:|---:|"]
        for weight in (0.25, 0.5):
            mixed = rank_average(beside["score"], pmi_scores, weight)
            lines.append(f"| {weight} | {auc_cell(beside['label'], mixed)} |")
        lines.append("")
    out = Path(args.output_dir) / f"lm-pmi-{args.name}.md"
    atomic_write_text(out, "\n".join(lines))
    return out


if __name__ == "__main__":
    print(run(sys.argv[1:]))
