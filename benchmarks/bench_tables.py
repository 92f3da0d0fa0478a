"""The benchmark's results as markdown: what benchmarks/bench.py writes to <name>.md and prints."""

from __future__ import annotations

from mtl.config import TASKS
from mtl.measure import cores, mib


PAIR_FORMATS = {"plain": "ours `<bos> q \\n t <eos>`, the reference `<bos>q<bos>t`: one token shorter",
                "prompt": "ours `data.template=prompt`'s question around the pair, the reference `<bos>q<bos>t`"}
"""How each pipeline writes a pair, by ours' `data.template`, for the figures' explanation."""


def format_markdown(r: dict) -> str:
    return "\n".join([*header(r), *training_table(r), *start_table(r), *inference_table(r), *targets_section(r),
                      *method_notes(r)])


def start_table(r: dict) -> list[str]:
    """The first logged windows of each trainer run beside its whole-run rate (issue: slow first steps); a run that
    logged fewer windows shows a dash."""
    train = r["training"]
    runs = [(train["ours"], r["setup"]["batching"])] + [(p, name) for name, p in train["others"].items()]
    steps = sorted({int(s) for p, _ in runs for s in p.get("start_tokens_per_s", {})})
    if not steps:
        return []
    lines = ["## Start-up", "", "Tokens/s of the trainer's first logged windows against the whole run (its log, "
             "`metrics.jsonl`):", "", "| run | " + " | ".join(f"steps to {s}" for s in steps) + " | whole run |",
             "|---|" + "---:|" * (len(steps) + 1)]
    for p, name in runs:
        rates = {int(s): v for s, v in p.get("start_tokens_per_s", {}).items()}
        cells = [f"{rates[s]:.1f}" if s in rates else "—" for s in steps]
        lines.append(f"| ours, {name} | " + " | ".join(cells) + f" | {p['tokens_per_s']:.1f} |")
    return lines + [""]


def header(r: dict) -> list[str]:
    """Command, date, machine, load, matmul peak and setup: what the figures below depend on."""
    m, s, peak = r["machine"], r["setup"], r["matmul_peak"]
    lines = [
        f"# Benchmark: {r['backbone']} on {r['device']} ({r['dtype']})", "",
        f"- command: `{r['command']}`",
        f"- date: {r['date']} (whole run {r['wall_seconds'] / 60:.1f} min)",
        f"- machine: {m['cpu']}, {m['cpu_cores']} cores ({', '.join(m['cpu_features']) or 'no AVX2'}), "
        f"{m['torch_threads']} torch threads{', GPU ' + m['gpu'] if 'gpu' in m else ''}; {m['os']}; Python "
        f"{m['python']}, torch {m['torch']}, transformers {m['transformers']}, peft {m['peft']}",
        f"- load average (1/5/15 min) before the run {_load(r['load_average']['before'])}, after "
        f"{_load(r['load_average']['after'])}",
        f"- matmul peak ({peak['dtype']}, {peak['size']}³, best of {peak['reps']}): "
        f"{peak['flops_per_s'] / 1e9:.1f} GFLOP/s, the higher of the run's start "
        f"{peak['start']['flops_per_s'] / 1e9:.1f} GFLOP/s (other load {cores(peak['start']['other_load'])}) "
        f"and end {peak['end']['flops_per_s'] / 1e9:.1f} GFLOP/s (other load {cores(peak['end']['other_load'])})",
        f"- data: {s['data']['qc_train']}, {s['data']['qi_train']}; F1 on the dev subset "
        f"(data.dev_limit={s['dev_limit']} per task)",
        f"- batch {s['global_batch_size']} pairs per step (micro-batch {s['micro_batch_size']}); LoRA r={s['lora_r']} "
        f"on {', '.join(s['lora_targets'])}, dropout {s.get('lora_dropout', '?')} (masks: "
        f"{'mtl.dropout' if s.get('fast_dropout') else 'torch'} for ours, torch for the reference)",
    ]
    if r.get("gpu") is None:
        lines.append("- GPU: none (no GPU was available to this run: GPU bf16 LoRA training MFU is not measured "
                     "here)")
    return lines


def training_table(r: dict) -> list[str]:
    s, train, ref, ratio = r["setup"], r["training"], r["training"]["reference"], r["ratios"]
    lines = ["", "## Training", "",
             "| pipeline | steps | pairs/s | tokens/s | computed (shared) | padding | model GFLOP/s | MFU | "
             "peak memory | other load | test F1 avg | F1 QC | F1 QI | F1 avg | F1 avg (tuned) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [(f"ours: joint model, {_batching(s['batching'], s)}", train["ours"])]
    rows += [(f"ours: joint model, {_batching(name, s)}", p) for name, p in train["others"].items()]
    rows += [(f"reference: QC model, random batches, max_length {s['reference_max_length']}", ref["qc"]),
             (f"reference: QI model, random batches, max_length {s['reference_max_length']}", ref["qi"]),
             ("reference: both models", ref["total"])]
    for label, p in rows:
        f1 = p["f1"]
        lines.append(
            f"| {label} | {p['steps']} | {p['examples_per_s']:.2f} | {p['tokens_per_s']:.1f} | "
            f"{1 - p['shared_fraction']:.0%} ({p['shared_fraction']:.0%}) | "
            f"{p['padding_fraction']:.1%} | {p['flops_per_s'] / 1e9:.2f} | {p['mfu']:.1%} | "
            f"{mib(p['peak_memory_bytes'])} | {cores(p['other_load'])} | {_f(f1.get('test_avg'))} | "
            f"{_f(f1.get('qc'))} | {_f(f1.get('qi'))} | "
            f"{_f(f1.get('avg'))} | {_f(f1.get('avg_tuned'))} |")
    lines += [f"| **ours / reference** |  | **{ratio['train_examples_per_s']:.2f}x** | "
              f"**{ratio['train_tokens_per_s']:.2f}x** |  |  |  |  |  |  | "
              f"{_diff(train['ours']['f1'], ref['total']['f1'], 'test_avg')} |  |  | "
              f"{train['ours']['f1']['avg'] - ref['total']['f1']['avg']:+.4f} | "
              f"{train['ours']['f1']['avg_tuned'] - ref['total']['f1']['avg_tuned']:+.4f} |", ""]
    return lines


def inference_table(r: dict) -> list[str]:
    inf, mem, ratio = r["inference"], r["memory"], r["ratios"]
    lines = ["## Inference and memory", "",
             "| pipeline | models in memory | parameter memory | QC pairs/s | QI pairs/s | pairs/s (both) | "
             "peak memory | other load |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, p in (("ours: one joint model, QC and QI in shared length-sorted batches", inf["ours"]),
                     ("reference: two single-task models, batches in file order", inf["reference"])):
        per_task = [f"{p['tasks'][t]['pairs_per_s']:.1f}" if "pairs_per_s" in p["tasks"][t] else "mixed"
                    for t in TASKS]
        lines.append(f"| {label} | {p['models']} | {mib(p['parameter_bytes'])} | {' | '.join(per_task)} | "
                     f"{p['pairs_per_s']:.1f} | {mib(p['peak_memory_bytes'])} | {cores(p['other_load'])} |")
    lines += [f"| **ours / reference** |  | **{1 / mem['ratio']:.2f}x** |  |  | "
              f"**{ratio['inference_pairs_per_s']:.2f}x** |  |  |", ""]
    return lines


def targets_section(r: dict) -> list[str]:
    ratio, train, ref = r["ratios"], r["training"], r["training"]["reference"]
    t = {k: "met" if v else "not met" for k, v in r["targets"].items()}
    lines = ["## Targets", "",
             f"- tokens/s at least 2x the reference: **{t['train_tokens_per_s_at_least_2x']}** "
             f"({ratio['train_tokens_per_s']:.2f}x; pairs/s {ratio['train_examples_per_s']:.2f}x)",
             f"- padding under 10%: **{t['padding_under_10pct']}** "
             f"({train['ours']['padding_fraction']:.1%} ours, {ref['total']['padding_fraction']:.1%} reference)",
             f"- F1 avg equal or better: **{t['f1_avg_equal_or_better']}** ({_headline_f1(train['ours']['f1'])} vs "
             f"{_headline_f1(ref['total']['f1'])})"]
    if "batching" in r:
        lines += [f"- batching: {c['verdict']}" for c in r["batching"]["others"].values()]
    return lines


def method_notes(r: dict) -> list[str]:
    """How each figure is made, with this run's own numbers where a formula needs them."""
    s = r["setup"]
    return ["", "## How the figures are made", "",
            f"- Ours trains {s['joint_steps']} joint steps, each reference model {s['steps_per_task']} steps on its "
            "task: the same pairs per task, the same optimizer, learning rates, schedule and seed. Training time is "
            "the trainer's own (optimizer steps only; evaluation and checkpoints excluded).",
            "- Tokens/s counts the tokens of the pairs trained on in each pipeline's own pair format "
            f"({PAIR_FORMATS[s.get('template', 'plain')]}), so pairs/s is the "
            "like-for-like rate. *Computed* is the share of those tokens the forward passes ran on: prefix-tree "
            "rows (`shared` batching) compute a query, and the start of paths, once for all its pairs in a "
            "batch; the share they saved is in brackets. Packed rows (`packed` batching) hold several pairs each, "
            "nothing merged: every token computed, no padding between pairs.",
            "- Padding = 1 - computed tokens / token slots (rows x width of every forward pass).",
            "- Model FLOPs per pair of L tokens = L·(4·N_frozen + 6·N_lora) + Σ_layers 12·d_attn·P(L) "
            f"(N_frozen = {r['flop_model']['frozen_linear_params']:,}, N_lora = "
            f"{r['flop_model']['lora_params']:,}, d_attn = {r['flop_model']['attention_width']}, P = causal "
            "query-key pairs); prefix-tree rows count each computed token once, a token at depth k scoring k + 1 "
            "keys. MFU = model FLOP/s / the matmul peak above. Padding and shared tokens are not counted as work.",
            "- Matmul peak: measured at the start and again at the end of the run; MFU uses the higher, so other "
            "work during one of the two measurements does not lower the ceiling and inflate MFU (the other load "
            "during each is shown above; only other work during both would).",
            "- Peak memory: the process's peak RSS during that phase on CPU (allocator peak on CUDA). Other load: "
            "CPU cores other processes kept busy on average during the phase (/proc/stat minus this process); "
            "anything well above 0 means that phase's timings were slowed down by other work.",
            "- Inference: the dev subset of both tasks. Ours serves both tasks with one backbone pass per batch: "
            "QC and QI pairs are sorted by length together and cut into shared batches, and each row's pooled "
            "vector goes to its task's head (`MultiTaskClassifier.forward_mixed`, logits equal to the per-task "
            "forward's), so its per-task columns read *mixed*; the reference runs each task's pairs through its "
            "own model, in file order. Parameter memory counts every parameter of the loaded model(s) (the "
            "reference serves two backbones).", ""]


def _batching(batching: str, setup: dict) -> str:
    if batching == "shared":
        return f"shared batching: prefix-tree rows of {setup['row_tokens']} tokens"
    if batching == "packed":
        return f"packed batching: rows of {setup['row_tokens']} tokens, pairs not merged"
    return f"{batching} batches, max_length {setup['max_length']}"


def _load(values) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def _f(x) -> str:
    return "" if x is None else f"{x:.4f}"


def _headline_f1(f1: dict) -> str:
    """The held-out test F1 avg where the run had a test split, else validation F1 avg at 0.5 (older results)."""
    return f"{f1['test_avg']:.4f} on the test split" if "test_avg" in f1 else f"{f1['avg']:.4f} at 0.5, validation"


def _diff(ours: dict, reference: dict, key: str) -> str:
    return f"{ours[key] - reference[key]:+.4f}" if key in ours and key in reference else ""
