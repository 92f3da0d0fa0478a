"""What a timing was measured on and what else ran meanwhile, shared by the benchmark (benchmarks/bench.py), the
comparison grid (`mtl.experiments`) and its report (`mtl.report`), so their figures are read and printed alike.

Peak memory: on CUDA the allocator's peak; on Linux CPUs the process's peak RSS since the `with` began (VmHWM, reset
through /proc/self/clear_refs); elsewhere `ru_maxrss` (the process lifetime's peak). Other load: the CPU cores
other processes kept busy meanwhile (Linux: /proc/stat minus this process); timings are only comparable when it is
near 0.

torch is imported where it is used: `mtl report` formats these figures without loading it.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import resource
import time
from pathlib import Path

DASH = "—"
"""A table cell with nothing measured in it."""


class Meter:
    """Peak memory of the code inside the `with` (`bytes`) and the CPU cores other processes kept busy meanwhile
    (`other_load`, None where /proc/stat is missing); see the module doc."""

    def __init__(self, device: str):
        self.device, self.bytes, self.other_load = device, 0, None

    def __enter__(self):
        gc.collect()
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        else:
            _trim_heap()
            try:  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                pass
        self._start = (time.perf_counter(), _machine_busy_seconds(), sum(os.times()[:2]))
        return self

    def __exit__(self, *exc):
        wall, busy, own = time.perf_counter(), _machine_busy_seconds(), sum(os.times()[:2])
        if busy is not None and self._start[1] is not None:
            others = (busy - self._start[1]) - (own - self._start[2])
            self.other_load = max(0.0, others) / max(wall - self._start[0], 1e-9)
        if self.device == "cuda":
            import torch

            self.bytes = int(torch.cuda.max_memory_allocated())
            return
        hwm = _vm_hwm()
        self.bytes = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _machine_busy_seconds() -> float | None:
    """CPU seconds all processes have spent on all cores since boot (None where /proc/stat is missing)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _vm_hwm() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _trim_heap() -> None:
    """Hand freed heap back to the OS, so one phase's peak RSS does not start from the previous phase's garbage."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def machine() -> dict:
    """What the figures are measured on: CPU, cores (all, and those this process may run on), the GPU if any, and
    the versions of what does the work."""
    import accelerate
    import peft
    import torch
    import transformers

    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                cpu = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {"cpu": cpu, "cpu_cores": os.cpu_count(), "cpu_cores_usable": usable,
            "torch_threads": torch.get_num_threads(),
            "cpu_features": [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags],
            "os": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__, "accelerate": accelerate.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def machine_line(info: dict) -> str:
    """`machine()` in one line, as grid.json records it."""
    return (f"{info['os']}, {info['cpu']}, {info['cpu_cores_usable']} cores usable, {info.get('gpu', 'no GPU')}, "
            f"Python {info['python']}, torch {info['torch']} ({info['torch_threads']} threads)")


def mib(nbytes: int | None) -> str:
    return DASH if not nbytes else f"{nbytes / 2**20:.0f} MiB"


def cores(load: float | None) -> str:
    return DASH if load is None else f"{load:.2f} cores"


def attention_pairs(lengths, causal: bool, window: int) -> tuple[float, float]:
    """Query-key pairs that padded batches of pairs with these real lengths score, in a full-attention layer and in
    a sliding-window one (`window` keys; 0 = none): padding excluded, so FLOPs built on them count lost work as lost
    utilisation."""
    import numpy as np

    lengths = np.asarray(lengths, dtype=np.float64)
    if not causal:
        full = lengths ** 2
        return float(full.sum()), float(full.sum())
    full = lengths * (lengths + 1) / 2
    beyond = np.maximum(lengths - (window or np.inf), 0)  # query q scores min(q + 1, window) keys
    return float(full.sum()), float((full - beyond * (beyond + 1) / 2).sum())


def tree_attention_pairs(position_ids, used: list[int], window: int) -> tuple[float, float]:
    """The same for prefix-tree rows (`mtl.packing.pack`): every node once, a node at depth k scoring its k + 1
    ancestors-or-self."""
    import numpy as np

    keys = np.concatenate([position_ids[r, :n].cpu().numpy() for r, n in enumerate(used)]).astype(np.float64) + 1
    return float(keys.sum()), float(np.minimum(keys, window or np.inf).sum())
