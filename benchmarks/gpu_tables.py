"""The GPU benchmark's results as markdown: what benchmarks/gpu_bench.py writes to <name>.md, and its closing lines."""

from __future__ import annotations

from mtl.measure import mib

TARGET_NAMES = {"train_mfu": "training MFU", "inference_pairs_per_s": "inference pairs/s",
                "train_pairs_per_s_vs_reference": "training pairs/s vs the reference"}


def format_markdown(r: dict) -> str:
    """Setup, then per shape its training and inference tables, then the targets."""
    m, s, peak = r["machine"], r["setup"], r["matmul_peak"]
    lines = [f"# GPU benchmark{' (dry run)' if r['dry_run'] else ''}: random-weight Gemma-3 stacks on "
             f"{r['gpu'] or r['device']} ({r['dtype']})", "",
             f"- command: `{r['command']}`",
             f"- date: {r['date']} ({r['wall_seconds']:.0f} s of a {r['budget_seconds']:.0f} s budget)",
             f"- machine: {m.get('gpu', 'no GPU')}, {m['cpu']} ({m['cpu_cores']} cores); Python {m['python']}, torch "
             f"{m['torch']}, transformers {m['transformers']}, peft {m['peft']}, accelerate {m['accelerate']}",
             f"- pairs: `{r['pairs_file']['path']}`, {_counts(r['pairs_file'].get('pairs', {}))}; token ids of "
             f"{r['pairs_file'].get('backbone', '?')}'s tokenizer",
             f"- LoRA r={s['lora_r']} on {', '.join(s['lora_targets'])}; {s['attn_implementation']} attention; "
             f"gradient checkpointing {'on' if s['gradient_checkpointing'] else 'off'}; prefix-tree and packed rows "
             f"of {s['row_tokens']} tokens; {s['warmup_steps']} warm-up step(s), then up to {s['steps']} timed steps "
             f"or {s['seconds_per_phase']} s per batching"]
    if peak:
        lines.append(f"- matmul peak ({peak['dtype']}, {peak['size']}³, best of {peak['reps']}): "
                     f"{peak['flops_per_s'] / 1e12:.1f} TFLOP/s, the higher of the run's start "
                     f"({peak['start']['flops_per_s'] / 1e12:.1f}) and end ("
                     f"{'not measured' if peak['end'] is None else f'{peak_end_tflops(peak):.1f}'}); MFU is against it")
    for shape, e in r["shapes"].items():
        lines += ["", f"## {shape}", ""]
        if "error" in e and "parameters" not in e:
            lines.append(f"Not built: {e['error']['message']}")
            continue
        if "parameters" not in e:
            continue
        est = e["planner_estimate_gib"]
        lines += [f"{e['parameters']['total']:,} parameters ({e['parameters']['trainable']:,} trainable), built in "
                  f"{e['build_seconds']:.1f} s; {e['global_batch_size']} pairs per step in micro-batches of "
                  f"{e['micro_batch_size']}; serving batches of {e['eval_batch_size']}; `mtl plan`'s estimate at "
                  f"micro-batch {e['micro_batch_size']} x {e['longest_pair']} tokens (the longest pair): "
                  f"{est['total']:.1f} GiB ({est['activations']:.1f} GiB activations)", "",
                  "| training | steps | pairs/s | tokens/s | computed | padding | model TFLOP/s | MFU | peak memory |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, p in e["training"].items():
            if "tokens_per_s" not in p:
                lines.append(f"| {name} | {_why_not(p)} | | | | | | | |")
                continue
            lines.append(f"| {name} | {p['steps']} | {p['examples_per_s']:.1f} | {p['tokens_per_s']:.0f} | "
                         f"{1 - p['shared_fraction']:.0%} | {p['padding_fraction']:.1%} | "
                         f"{p['flops_per_s'] / 1e12:.2f} | {_pct(p.get('mfu'))} | {mib(p['peak_memory_bytes'])} |")
        lines += ["", "| inference | pairs | pairs/s | tokens/s | peak memory |", "|---|---:|---:|---:|---:|"]
        for name, p in e["inference"].items():
            if "pairs_per_s" not in p:
                lines.append(f"| {name} | {_why_not(p)} | | | |")
                continue
            lines.append(f"| {name} | {p['pairs']} | {p['pairs_per_s']:.1f} | {p['tokens_per_s']:.0f} | "
                         f"{mib(p['peak_memory_bytes'])} |")
    lines += ["", f"## Targets ({r['targets_shape']} shape{'' if r['targets_shape'] == '12b' else ': set for 12b'})",
              ""]
    for key, label in TARGET_NAMES.items():
        t = r["targets"][key]
        show = _pct if key == "train_mfu" else _number
        measured = f"{show(t['value'])} ({t['best']}): {'met' if t['met'] else 'NOT met'}" if t["best"] else \
            "not measured"
        lines.append(f"- {label} >= {show(t['target'])}: {measured}")
    if r["skipped"]:
        lines += ["", "Skipped: " + "; ".join(r["skipped"])]
    lines += ["", "Tokens/s counts the pairs' own tokens; `computed` is the share of them the forward passes ran on "
              "(prefix-tree rows compute a shared prefix once); padding is the share of row slots that held no token; "
              "MFU counts model FLOPs (`bench.py`'s formula on the step's own counts: padding and recomputation "
              "are not counted)."]
    return "\n".join(lines) + "\n"


def format_summary(r: dict) -> str:
    """The last lines printed: one per phase, then the targets."""
    lines = []
    for shape, e in r["shapes"].items():
        for kind in ("training", "inference"):
            for name, p in e.get(kind, {}).items():
                lines.append(f"{shape} {kind} {name}: {phase_line(p)}")
    for key, t in r["targets"].items():
        if t["best"]:
            lines.append(f"target {key} >= {_number(t['target'])}: {_number(t['value'])} ({t['best']}) "
                         f"{'met' if t['met'] else 'NOT met'}")
    return "\n".join(lines)


def phase_line(p: dict) -> str:
    """One phase's figures (or why there are none) in a line."""
    if "tokens_per_s" in p and "steps" in p:
        return (f"{p['examples_per_s']:.1f} pairs/s, {p['tokens_per_s']:.0f} tokens/s, padding "
                f"{p['padding_fraction']:.1%}, MFU {_pct(p.get('mfu'))}, peak {mib(p['peak_memory_bytes'])}")
    if "pairs_per_s" in p:
        return f"{p['pairs_per_s']:.1f} pairs/s, peak {mib(p['peak_memory_bytes'])}"
    return _why_not(p)


def _why_not(p: dict) -> str:
    return f"skipped: {p['skipped']}" if "skipped" in p else f"failed: {p['error']['message']}"


def peak_end_tflops(peak: dict) -> float:
    return peak["end"]["flops_per_s"] / 1e12


def _counts(pairs: dict) -> str:
    """{"qc_train": 2694, "qc_val": 1000, ...} as "2694 QC train, 1000 QC dev, ..."."""
    parts = (key.split("_") for key in pairs)
    return ", ".join(f"{pairs[f'{t}_{s}']} {t.upper()} {'dev' if s == 'val' else s}" for t, s in parts) or "?"


def _number(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _pct(x) -> str:
    return "—" if x is None else f"{x:.1%}"
