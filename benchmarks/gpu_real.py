"""The real-data recipe on the device tool's GPU with the embedded Gemma-3 270M, whose weights are too large to
travel: the GGUF is 235 MiB (170 of it the 262,144-row token embedding) and one call of the tool carries 64 MiB.

    # here, once (the embedded backbone, ../shared/data): two parts, each under 64 MiB beside the repository
    python benchmarks/gpu_real.py pack --out .gpu/part1 --layers 0-8 --jobs benchmarks/gpu_real/jobs1.txt --first
    python benchmarks/gpu_real.py pack --out .gpu/part2 --layers 9-17 --jobs benchmarks/gpu_real/jobs2.txt \
        --minus .gpu/part1
    # on the GPU machine, one call per part, back to back (benchmarks/README.md has the device tool's calls)
    python3 benchmarks/gpu_real.py run --parts .gpu/part1 --jobs benchmarks/gpu_real/jobs1.txt \
        --stash /root/gpu-real --work /root/gpu-work --output-dir $OUT --budget 235

`pack` (here, with the embedded backbone and the data) keeps the GGUF's tensors of the layers asked for as they are
stored (quantized blocks), and of the token embedding only the rows of the ids that the jobs' data gives under their
configs (tokenized here, as `mtl train` tokenizes). Each part carries the data files its jobs name (xz'd; `.gpu/` is
ignored by git, so they are never committed); `--first` adds what a set of parts needs once: the backbone's config
and tokenizer and the wheels the GPU image lacks (peft at this project's version, gguf, pydantic).

`run` merges the parts into a plain HF folder that holds the same weights as the cache's converted folder (the same
`gguf` dequantization; GGUF stores Gemma's norms as 1 + w), embedding rows not carried left at zero, and runs each
job line through `seeds.py` (`{backbone}` and `{data}` filled in), `--parallel` seeds at a time across the jobs (one
process each: at 16 pairs a step the step's fixed costs, not the GPU, set the pace) while `--budget` allows
(`run_jobs`). The GPU image has no `datasets`, so pairs are tokenized without the token cache, and an id outside the
carried rows stops that seed's run rather than read a zero row. With `--stash`, the parts are also kept in that
folder, and parts kept there by an earlier call on the same (still warm) machine join this one's: a second call can
add layers 9-17.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import logging
import lzma
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mtl.io import atomic_write_text

log = logging.getLogger("benchmarks.gpu_real")

REPO = Path(__file__).resolve().parents[1]
EMBEDDED = "embedded:gemma3-270m"
WHEELS = ("peft", "gguf", "pydantic", "pydantic-core", "annotated-types", "typing-inspection")
"""Not on the GPU image (peft is, at another version); pydantic checks the saved model's info.json."""
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any")
NORMS = {"attn_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
         "ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
         "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm"}
PROJECTIONS = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}
"""GGUF tensor name (in block `blk.N.`) -> the converted folder's name (in `model.layers.N.`)."""


def hf_name(gguf_name: str) -> tuple[str, bool]:
    """(the converted folder's name, whether GGUF stores it as 1 + w) of a GGUF tensor name."""
    if gguf_name == "output_norm.weight":
        return "model.norm.weight", True
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight", False
    match = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", gguf_name)
    if not match or match.group(2) not in {**NORMS, **PROJECTIONS}:
        raise ValueError(f"unexpected GGUF tensor {gguf_name!r}")
    layer, part = match.groups()
    return f"model.layers.{layer}.{NORMS.get(part) or PROJECTIONS[part]}.weight", part in NORMS


def parse_layers(spec: str) -> list[int]:
    first, _, last = spec.partition("-")
    return list(range(int(first), int(last or first) + 1))


def read_jobs(path: Path) -> list[list[str]]:
    """One `seeds.py` argument list per non-blank, non-comment line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [shlex.split(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def fill(args: list[str], backbone: str, data: str) -> list[str]:
    return [a.replace("{backbone}", backbone).replace("{data}", data) for a in args]


def job_config(args: list[str]):
    """The config `mtl train` resolves for one job line (flags as seeds.py passes them)."""
    from seeds import build_parser

    return parsed_config(build_parser().parse_args(args))


def parsed_config(ns: argparse.Namespace):
    """`job_config` of a line `seeds.build_parser` has already read."""
    from mtl.cli import flag_overrides
    from mtl.config import load_config

    return load_config(ns.config, [*ns.overrides, *flag_overrides(ns.mode, ns.task, ns.fold)])


def token_ids(jobs: list[list[str]], data: str) -> set[int]:
    """Every token id of every split of every job's data, tokenized as `mtl train` does."""
    from mtl.model import build_tokenizer
    from mtl.train import load_run_data

    ids: set[int] = set()
    for args in jobs:
        cfg = job_config(fill(args, EMBEDDED, data))
        pairs, _ = build_tokenizer(cfg)
        run_data = load_run_data(cfg, pairs)
        for part in (run_data.train, run_data.val, run_data.test, run_data.val_all):
            for task_data in part.values():
                for row in task_data.input_ids:
                    ids.update(int(i) for i in row)
        ids.update(i for i in (pairs.pad_id, pairs.tokenizer.bos_token_id, pairs.tokenizer.eos_token_id)
                   if i is not None)
    return ids


def data_files(jobs: list[list[str]]) -> list[str]:
    return sorted({m for args in jobs for a in args for m in re.findall(r"\{data\}/([\w.\-]+)", a)})


def pack(args: argparse.Namespace) -> Path:
    from importlib.metadata import version

    from gguf import GGUFReader

    from mtl.backbone import EMBEDDED as PACKAGES, resolve

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "data").mkdir(parents=True)
    jobs = read_jobs(Path(args.jobs))
    folder = resolve(EMBEDDED)
    gguf_path = Path(__import__(PACKAGES[EMBEDDED]).assemble())
    reader = GGUFReader(str(gguf_path))
    tensors = {t.name: t for t in reader.tensors}
    keep = set(parse_layers(args.layers)) if args.layers else set()
    arrays, meta = {}, {"tensors": {}, "gguf": gguf_path.name, "made_by": shlex.join(sys.argv)}
    for name, tensor in tensors.items():
        block = re.match(r"blk\.(\d+)\.", name)
        if (block and int(block.group(1)) in keep) or (args.first and name == "output_norm.weight"):
            arrays[name] = np.asarray(tensor.data)
            meta["tensors"][name] = {"type": int(tensor.tensor_type), "shape": [int(s) for s in tensor.shape]}
    ids = token_ids(jobs, args.data)
    for other in args.minus or []:
        ids -= set(np.load(Path(other) / "blocks.npz")["token_embd.ids"].tolist())
    rows = np.array(sorted(ids), dtype=np.int64)
    embedding = tensors["token_embd.weight"]
    arrays["token_embd.ids"] = rows
    arrays["token_embd.rows"] = np.asarray(embedding.data)[rows]
    meta["tensors"]["token_embd.weight"] = {"type": int(embedding.tensor_type),
                                            "shape": [int(s) for s in embedding.shape]}
    np.savez(out / "blocks.npz", **arrays)
    for name in data_files(jobs):
        with lzma.open(out / "data" / f"{name}.xz", "wb", preset=9) as f:
            f.write((Path(args.data) / name).read_bytes())
    if args.first:
        meta["config"] = json.loads((folder / "config.json").read_text())
        for name in ("tokenizer.json", "tokenizer_config.json"):
            with lzma.open(out / f"{name}.xz", "wb", preset=9) as f:
                f.write((folder / name).read_bytes())
        wheels = out / "wheels"
        wheels.mkdir()
        # the versions installed here: setup.cfg's pins, and beside pydantic the packages it needs
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", "-d", str(wheels),
                        *(f"--platform={p}" for p in PLATFORMS), *(f"{w}=={version(w)}" for w in WHEELS)], check=True)
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    log.info("%s: %d tensors, %d embedding rows, %.1f MiB", out, len(meta["tensors"]) - 1, len(rows), size / 2**20)
    return out


def assemble(parts: list[Path], folder: Path) -> tuple[set[int], int, int]:
    """A plain HF folder from the parts (the first consecutive layers from 0 that they hold); returns the ids of
    the embedding rows they carry, the layers it holds and the layers the backbone has."""
    import torch
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize
    from safetensors.torch import save_file

    metas = [json.loads((p / "meta.json").read_text()) for p in parts]
    first = [p for p, m in zip(parts, metas) if "config" in m]
    if len(first) != 1:
        raise SystemExit(f"{[str(p) for p in parts]}: exactly one part must be packed with --first, not {len(first)}")
    config = metas[parts.index(first[0])]["config"]
    total = config["num_hidden_layers"]
    state, ids = {}, set()
    embedding = None
    for part, meta in zip(parts, metas):
        blocks = np.load(part / "blocks.npz")
        for name, info in meta["tensors"].items():
            qtype = GGMLQuantizationType(info["type"])
            if name == "token_embd.weight":
                rows = blocks["token_embd.ids"]
                if embedding is None:
                    embedding = torch.zeros(list(reversed(info["shape"])), dtype=torch.float32)
                embedding[torch.from_numpy(rows)] = torch.from_numpy(dequantize(blocks["token_embd.rows"], qtype))
                ids.update(rows.tolist())
                continue
            key, plus_one = hf_name(name)
            values = dequantize(blocks[name], qtype).reshape(list(reversed(info["shape"])))
            state[key] = torch.from_numpy(values - 1 if plus_one else values).contiguous()
    state["model.embed_tokens.weight"] = embedding
    layers = 0
    while f"model.layers.{layers}.input_layernorm.weight" in state:
        layers += 1
    state = {k: v for k, v in state.items()
             if not (m := re.match(r"model\.layers\.(\d+)\.", k)) or int(m.group(1)) < layers}
    config = {**config, "num_hidden_layers": layers, "layer_types": config["layer_types"][:layers]}
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes(lzma.open(first[0] / f"{name}.xz").read())
    log.info("%s: %d layers, %d embedding rows, from %s", folder, layers, len(ids), ", ".join(map(str, parts)))
    return ids, layers, total


def guard_tokens(carried: set[int]) -> None:
    """Tokenize without `datasets` (not on the GPU image) or its cache, and refuse ids whose rows did not travel."""
    import mtl.data.tasks

    allowed = np.zeros(max(carried) + 1, dtype=bool)
    allowed[list(carried)] = True

    def tokenize(pairs, pair_tokenizer, cache_dir):
        ids = pair_tokenizer.encode(pairs["text_a"].tolist(), pairs["text_b"].tolist())
        flat = np.fromiter((i for row in ids for i in row), dtype=np.int64)
        missing = flat[(flat >= len(allowed)) | ~allowed[np.minimum(flat, len(allowed) - 1)]]
        if len(missing):
            raise SystemExit(f"token ids {sorted(set(missing.tolist()))[:5]} have no embedding row in the parts: pack "
                             "them from the same jobs and data")
        return ids

    mtl.data.tasks.tokenize_pairs = tokenize


def train_seed(seeds_args: list[str], carried: set[int], threads: int) -> None:
    """One seed, in a process of its own (spawned: the parent's CUDA and OpenMP state must not be inherited)."""
    import torch

    import seeds

    torch.set_num_threads(threads)
    guard_tokens(carried)
    seeds.run(seeds_args)


def stash_parts(parts: list[Path], stash: Path) -> list[Path]:
    """Keep `parts` in `stash` (a part there with another meta.json is replaced, a copy lands whole or not at all);
    returns every part the stash holds."""
    stash.mkdir(parents=True, exist_ok=True)
    for part in parts:
        kept = stash / part.name
        if kept.exists() and (kept / "meta.json").read_bytes() == (part / "meta.json").read_bytes():
            continue
        tmp = stash / f".{part.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(part, tmp)
        shutil.rmtree(kept, ignore_errors=True)
        tmp.rename(kept)
    return sorted(p for p in stash.iterdir() if not p.name.startswith(".") and (p / "meta.json").is_file())


def run_jobs(jobs: list[list[str]], out: Path, runs: Path, budget: float, parallel: int, launch,
             layers: tuple[int, int], record: dict) -> dict:
    """Every job's seeds, `parallel` at a time across jobs (a slot that frees goes to the next seed in file order,
    whichever job it belongs to): `launch(seeds_args)` starts one (a process with `is_alive()` and `exitcode`); each
    seed is tabled into `out` as soon as it ends, so a call stopped at its time limit keeps every seed that finished.
    A seed starts only if 1.2x an estimate of it fits in what is left of `budget`: the slowest of its job's ended
    seeds (of any job's while none of its own has ended) or the longest-running of its job's seeds, whichever is
    longer; with nothing ended and nothing of its job running there is no estimate and it starts. Seeds already in a
    `seeds-<name>.json` found in `out` are not trained again; a job that wants all layers (`model.num_layers=0`) is
    refused while the backbone holds fewer (`layers`: held, total), and so is a second job line of a name already
    listed (both would train into one run folder). A line is read with `seeds.py`'s own parser: one without
    `--seeds` trains its default seeds, and one it refuses is recorded as an error while the other lines run."""
    import seeds

    started = time.monotonic()
    summary = out / "gpu-real.json"
    slowest: dict[str, float] = {}
    record.setdefault("jobs", [])
    record.setdefault("skipped", [])

    def write():
        record["wall_seconds"] = round(time.monotonic() - started, 1)
        atomic_write_text(summary, json.dumps(record, indent=1) + "\n")

    def table(rest: list[str], done: list[str], entry: dict) -> bool:
        try:  # reads the runs' metrics.json and the table's json; trains nothing
            seeds.run([*rest, "--seeds", ",".join(done), "--root", str(runs), "--output-dir", str(out)])
            return True
        except (Exception, SystemExit) as err:
            entry["error"] = f"tabling: {type(err).__name__}: {err}"
            return False

    queue = []  # (name, the job's args less --seeds, its entry, seeds tabled so far, seed), in file order
    names = set()
    parser = seeds.build_parser()
    for job in jobs:
        entry = {"args": job, "seeds": {}}
        record["jobs"].append(entry)
        said = io.StringIO()
        try:  # seeds.py's own parser, so a line means here what it means to seeds.py (its default seeds too)
            with contextlib.redirect_stderr(said):
                ns = parser.parse_args(job)
        except SystemExit:  # the reason goes into gpu-real.json, the file that comes back from the device
            entry["error"] = "not a seeds.py command line: " + said.getvalue().strip().splitlines()[-1]
            continue
        name, seed_list = ns.name, list(dict.fromkeys(ns.seeds.split(",")))
        rest = [a for i, a in enumerate(job)
                if a != "--seeds" and not a.startswith("--seeds=") and (i == 0 or job[i - 1] != "--seeds")]
        table_file = out / f"seeds-{name}.json"
        earlier = list(json.loads(table_file.read_text())["seeds"]) if table_file.is_file() else []
        entry["recorded_earlier"] = [seed for seed in seed_list if seed in earlier]
        if name in names:
            entry["error"] = f"a second job line named {name}"
            continue
        names.add(name)
        if parsed_config(ns).model.num_layers == 0 and layers[0] < layers[1]:
            entry["error"] = f"wants all {layers[1]} layers; the parts hold {layers[0]}"
            continue
        if earlier and not table(rest, earlier, entry):  # a copied table of another recipe: refused before training
            continue
        done = list(earlier)
        queue += [(name, rest, entry, done, seed) for seed in seed_list if seed not in earlier]
    write()

    running = []  # (process, start time, its queue item)
    while queue or running:
        while queue and len(running) < parallel:
            item = queue.pop(0)
            name, rest, _, _, seed = item
            now = time.monotonic()
            left = budget - (now - started)
            own = [now - t0 for _, t0, (job_name, *_) in running if job_name == name]
            estimate = max([slowest.get(name, max(slowest.values(), default=0.0)), *own])
            if estimate and left < 1.2 * estimate:
                record["skipped"].append(f"{name} seed {seed}: {left:.0f} s left")
                continue
            running.append((launch([*rest, "--seeds", seed]), time.monotonic(), item))
        now = time.monotonic()
        for ended in [r for r in running if not r[0].is_alive()]:
            running.remove(ended)
            proc, t0, (name, rest, entry, done, seed) = ended
            wall = now - t0
            slowest[name] = max(slowest.get(name, 0.0), wall)
            path = runs / name / f"seed-{seed}" / "metrics.json"
            if not path.is_file():
                entry["seeds"][seed] = {"error": f"no metrics.json (exit code {proc.exitcode})"}
            else:
                metrics = json.loads(path.read_text())
                entry["seeds"][seed] = {"wall_seconds": round(wall, 1), "train_seconds": metrics["train_seconds"],
                                        "steps": metrics["steps"], "best_step": metrics["best_step"],
                                        "pairs": metrics["pairs"]}
                done.append(seed)
                table(rest, done, entry)
            write()
        if running:
            time.sleep(0.5)
    write()
    return record


def run(args: argparse.Namespace) -> int:
    import multiprocessing
    import os

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = [Path(p) for p in args.parts]
    if args.stash:
        parts = stash_parts(parts, Path(args.stash))
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu-real-"))
    backbone, data = work / "backbone", work / "data"
    carried, held, total = assemble(parts, backbone)
    data.mkdir(parents=True, exist_ok=True)
    for part in parts:
        for packed in (part / "data").glob("*.xz"):
            text = lzma.open(packed).read()
            if args.dry_run_rows:
                text = b"".join(text.splitlines(keepends=True)[: args.dry_run_rows])
            (data / packed.name[:-3]).write_bytes(text)

    spawn = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // args.parallel)
    runs, tables = work / "runs", work / "tables"

    def launch(seeds_args: list[str]):
        # each seed tables itself into a folder of its own (seeds.py rewrites its json whole); run_jobs tables the job
        seed = seeds_args[-1]
        proc = spawn.Process(target=train_seed, args=(
            [*seeds_args, "--root", str(runs), "--output-dir", str(tables / seed)], carried, threads))
        proc.start()
        return proc

    record = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "parallel": args.parallel, "parts": [str(p) for p in parts], "layers": held}
    jobs = [fill(job, str(backbone), str(data)) + list(args.extra) for job in read_jobs(Path(args.jobs))]
    run_jobs(jobs, out, runs, args.budget, args.parallel, launch, (held, total), record)
    import peft
    import torch
    import transformers

    record["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    record["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                          "peft": peft.__version__}
    atomic_write_text(out / "gpu-real.json", json.dumps(record, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="here: the tensors and rows a part carries")
    p.add_argument("--out", required=True)
    p.add_argument("--layers", default="", help="e.g. 0-8")
    p.add_argument("--jobs", required=True, help="job lines whose data's token rows this part carries")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="what {data} stands for here")
    p.add_argument("--first", action="store_true", help="add config, tokenizer, data files and wheels")
    p.add_argument("--minus", nargs="*", help="parts whose rows this one leaves out")
    r = sub.add_parser("run", help="on the GPU machine: assemble the backbone, then train the jobs")
    r.add_argument("--parts", nargs="+", required=True)
    r.add_argument("--jobs", required=True)
    r.add_argument("--output-dir", required=True)
    r.add_argument("--budget", type=float, default=300.0,
                   help="seconds from the first job (assembling the backbone comes before): no seed starts that may "
                        "not fit")
    r.add_argument("--stash", help="a folder outside the repo copy that keeps parts between calls")
    r.add_argument("--work", help="where the backbone, data and runs go (default: a temporary folder)")
    r.add_argument("--parallel", type=int, default=1,
                   help="seeds trained at once (of one job or several), one process each")
    r.add_argument("--dry-run-rows", type=int, default=0, help="keep only the first N lines of each data file")
    r.add_argument("extra", nargs="*", help="key=value overrides added to every job")
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack(args)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
