"""Interleaving: which task each optimizer step trains, and the batches each task's stream yields.

Both are pure functions of (seed, step) or (seed, task, epoch), so every process computes the same schedule without
talking to the others, and resuming needs only the positions saved in `TaskStreams.state_dict()`.

- `proportional`: P(task) ~ w_task * n_task, as if the two training sets were concatenated.
- `temperature`:  P(task) ~ w_task * n_task^(1/T); T=1 is proportional, large T tends to w (up-samples the small task).
- `round_robin`:  a fixed cycle in which each task takes a share of the steps proportional to w_task, spread out
  (equal weights: qc, qi, qc, qi, ...; 2:1: qc, qi, qc, ...).

`w_task` is `tasks.loss_weight_<task>`. Each optimizer step trains one task, so a task's weight is its share of the
steps: the only lever that scales its share of the updates of the shared adapter under Adam. Scaling a step's loss
would be undone by clipping and by Adam's normalisation, and scaling a step's learning rate is undone by Adam's
momentum, which carries most of each step's gradient into the next steps (at the other task's rate).
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
import torch
from transformers.trainer_pt_utils import get_length_grouped_indices


def task_probabilities(sizes: dict[str, int], strategy: str, temperature: float = 1.0,
                       weights: dict[str, float] | None = None) -> dict[str, float]:
    """The share of optimizer steps each task gets (for `round_robin`, exactly over each cycle)."""
    tasks = sorted(sizes)
    w = np.array([1.0 if weights is None else float(weights[t]) for t in tasks], dtype=np.float64)
    if w.sum() <= 0:
        raise ValueError(f"task weights {weights} give no task a step")
    if strategy == "round_robin":
        mass = w
    else:
        power = 1.0 if strategy == "proportional" else 1.0 / temperature
        mass = w * np.array([sizes[t] ** power for t in tasks], dtype=np.float64)
    return dict(zip(tasks, (mass / mass.sum()).tolist()))


def task_for_step(step: int, sizes: dict[str, int], strategy: str, temperature: float, seed: int,
                  weights: dict[str, float] | None = None) -> str:
    """The task trained at optimizer step `step` (0-based)."""
    tasks = sorted(sizes)
    if len(tasks) == 1:
        return tasks[0]
    probs = task_probabilities(sizes, strategy, temperature, weights)
    if strategy == "round_robin":
        cycle = weighted_cycle(tuple((t, probs[t]) for t in tasks))
        return cycle[step % len(cycle)]
    rng = np.random.default_rng([seed, step])
    return tasks[int(rng.choice(len(tasks), p=[probs[t] for t in tasks]))]


@lru_cache(maxsize=16)
def weighted_cycle(shares: tuple[tuple[str, float], ...]) -> tuple[str, ...]:
    """One period of a deterministic schedule with these step shares, each task's steps spread evenly over it.

    Shares are made rational with denominators up to 100 (0.1 : 0.9 gives a cycle of 10 steps); at each position the
    task furthest behind its share goes next (ties: the first task), so every prefix is as close to the shares as a
    whole number of steps allows."""
    fractions = [(task, Fraction(share).limit_denominator(100)) for task, share in shares]
    denominator = math.lcm(*(f.denominator for _, f in fractions))
    counts = [(task, int(f * denominator)) for task, f in fractions if f > 0]
    divisor = math.gcd(*(c for _, c in counts))
    counts = [(task, c // divisor) for task, c in counts]
    length = sum(c for _, c in counts)
    cycle, done = [], {task: 0 for task, _ in counts}
    for position in range(1, length + 1):
        task = max(counts, key=lambda tc: (tc[1] * position / length - done[tc[0]], -counts.index(tc)))[0]
        done[task] += 1
        cycle.append(task)
    return tuple(cycle)


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, batching: str,
                  queries: np.ndarray | None = None) -> list[np.ndarray]:
    """One epoch of full batches of row indices (the remainder waits for the next epoch's shuffle).

    bucket: transformers' length grouping (shuffle, sort within mega-batches of 50 batches) and then the batch
    order shuffled, so a batch holds pairs of similar length (little padding) while the order stays random.
    shared: queries in random order, each query's pairs next to each other (in random order), cut into batches:
    a query's pairs mostly land in one batch, where prefix-tree rows (`mtl.packing`) compute the query once.
    Without `queries` every pair is its own query. random and packed: shuffled pairs (packed rows hold pairs of
    any length without padding, so grouping lengths would buy nothing).
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    if batching == "bucket":
        order = np.asarray(get_length_grouped_indices(lengths.tolist(), batch_size, generator=generator))
    elif batching == "shared":
        queries = np.arange(len(lengths)) if queries is None else np.asarray(queries)
        pair_order = torch.randperm(len(lengths), generator=generator).numpy()
        query_rank = torch.randperm(int(queries.max()) + 1, generator=generator).numpy()[queries[pair_order]]
        order = pair_order[np.argsort(query_rank, kind="stable")]
    elif batching in ("random", "packed"):
        order = torch.randperm(len(lengths), generator=generator).numpy()
    else:  # `auto` is resolved against the model (mtl.packing.resolve_batching) before batches are drawn
        raise ValueError(f"batching must be bucket, shared, packed or random, got {batching!r}")
    n_full = len(order) // batch_size
    batches = [order[i * batch_size:(i + 1) * batch_size] for i in range(n_full)]
    if batching == "bucket":
        shuffle = torch.randperm(n_full, generator=generator).tolist()
        batches = [batches[i] for i in shuffle]
    return batches


class TaskStreams:
    """An endless stream of global batches per task; `state_dict` is all a resumed run needs."""

    def __init__(self, lengths: dict[str, np.ndarray], batch_size: int, seed: int, batching: str,
                 queries: dict[str, np.ndarray] | None = None):
        for task, task_lengths in lengths.items():
            if len(task_lengths) < batch_size:
                raise ValueError(f"{task}: {len(task_lengths)} training pairs cannot fill one batch of {batch_size}")
        self.lengths, self.batch_size, self.seed, self.batching = lengths, batch_size, seed, batching
        self.queries = queries or {}
        self.position = {task: (0, 0) for task in lengths}
        self._current: dict[str, tuple[int, list[np.ndarray]]] = {}

    def _batches(self, task: str, epoch: int) -> list[np.ndarray]:
        """The task's batches for `epoch`, computed once per epoch (sorting a large set is not free)."""
        if self._current.get(task, (None,))[0] != epoch:
            task_seed = self.seed + 7919 * (sorted(self.lengths).index(task) + 1)
            batches = epoch_batches(self.lengths[task], self.batch_size, task_seed, epoch, self.batching,
                                    self.queries.get(task))
            self._current[task] = (epoch, batches)
        return self._current[task][1]

    def next(self, task: str) -> np.ndarray:
        epoch, index = self.position[task]
        batches = self._batches(task, epoch)
        if index >= len(batches):
            epoch, index = epoch + 1, 0
            batches = self._batches(task, epoch)
        self.position[task] = (epoch, index + 1)
        return batches[index]

    def state_dict(self) -> dict:
        return {task: list(pos) for task, pos in self.position.items()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self.position):
            raise ValueError(f"sampler state is for tasks {sorted(state)}, this run trains {sorted(self.position)}")
        self.position = {task: (int(e), int(i)) for task, (e, i) in state.items()}


def shard(global_batch: np.ndarray, micro_batch_size: int, rank: int, world_size: int) -> list[np.ndarray]:
    """This process's micro-batches of a global batch.

    Every process draws the same global batch (the task must be the same on all of them: each task has its own
    head), then takes micro-batches rank, rank+world, ...; the union over processes and accumulation steps is the
    global batch, so 1 and N processes see the same examples per optimizer step.
    """
    micros = [global_batch[i:i + micro_batch_size] for i in range(0, len(global_batch), micro_batch_size)]
    return micros[rank::world_size]
