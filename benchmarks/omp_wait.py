"""Does OpenMP's wait policy decide how a training step fares when another process wants the same cores?

    flock /tmp/mtl-heavy.lock python benchmarks/omp_wait.py        # ~3 minutes on 2 cores

A step-like workload (forward and backward of a 640-wide MLP block over 16 x 64 tokens, the shape of a Gemma-3 270M
layer at the sample's batch) runs in a fresh process per `OMP_WAIT_POLICY` (unset, ACTIVE, PASSIVE; it must be set
before torch loads, hence one process each), alone and beside a competitor: a one-thread Python spinner (a busy
machine) or a second copy of the same workload (two trainings). Writes `results/omp-wait-<device>.md`: the median
and slowest step of each. `scripts/train_mtl.sh` and `scripts/compare.sh` set PASSIVE unless the caller set a policy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

POLICIES = ("unset", "ACTIVE", "PASSIVE")


def workload(steps: int) -> list[float]:
    """Seconds per step of a forward + backward through two MLP blocks of Gemma-3 270M's width."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(640, 2048), torch.nn.GELU(), torch.nn.Linear(2048, 640),
                                torch.nn.Linear(640, 2048), torch.nn.GELU(), torch.nn.Linear(2048, 640))
    x = torch.randn(16 * 64, 640)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model(x).square().mean().backward()
        times.append(time.perf_counter() - start)
    return times


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def environment(policy: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy != "unset":
        env["OMP_WAIT_POLICY"] = policy
    return env


def measure(policy: str, competitor: str, steps: int) -> list[float]:
    """Step times of one worker process under `policy`, with `competitor` (none, spinner, training) running."""
    rival = None
    if competitor == "spinner":
        rival = subprocess.Popen([sys.executable, __file__, "--spin", "600"], env=environment(policy))
    elif competitor == "training":
        rival = subprocess.Popen([sys.executable, __file__, "--work", str(steps * 100)], env=environment(policy),
                                 stdout=subprocess.DEVNULL)
    try:
        if rival:
            time.sleep(3)  # let the rival import torch and start working
        out = subprocess.run([sys.executable, __file__, "--work", str(steps)], env=environment(policy),
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)
    finally:
        if rival:
            rival.kill()
            rival.wait()


def table(results: dict, steps: int, command: str) -> str:
    import torch

    lines = ["# OpenMP wait policy against a busy machine", "", f"- command: `{command}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
             f"({torch.get_num_threads()} threads)",
             f"- workload: forward + backward of two 640-2048-640 MLP blocks over 1024 tokens, {steps} steps per cell "
             "(first step dropped); competitor: none, a one-thread Python spinner, or a second copy of the workload",
             "", "| OMP_WAIT_POLICY | alone: median / slowest (ms) | beside a spinner | beside a second training |",
             "|---|---:|---:|---:|"]
    for policy in POLICIES:
        cells = []
        for competitor in ("none", "spinner", "training"):
            t = sorted(results[policy][competitor][1:])
            cells.append(f"{1000 * t[len(t) // 2]:.0f} / {1000 * t[-1]:.0f}")
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--output-dir", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--work", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spin", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.work:
        print(json.dumps(workload(args.work)))
        return
    if args.spin:
        spin(args.spin)
        return
    results = {p: {c: measure(p, c, args.steps) for c in ("none", "spinner", "training")} for p in POLICIES}
    out = Path(args.output_dir) / "omp-wait-cpu.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table(results, args.steps, " ".join(["python", "benchmarks/omp_wait.py", *argv])), encoding="utf-8")
    print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
