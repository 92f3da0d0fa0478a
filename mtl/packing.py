"""Prefix-tree rows for pair classification: pairs share rows, and tokens that several pairs begin with are computed
once. Pairs of one query (`<bos> query \\n` is the same for all of them) then cost their query once, QC paths that
start alike share their first levels too, and each pair still gets exactly the logit it gets alone.

    batch = pack(data, rows, pad_id, row_tokens=128)
    logits = model(task, batch["input_ids"], position_ids=batch["position_ids"],
                   subtree_end=batch["subtree_end"], pool_at=batch["pool_at"])   # = the padded forward's logits

A row holds a prefix tree (trie) of its pairs' token ids, one token per node, in depth-first order. A node's position
is its depth, which is the token's position in its own pair, and it attends to its ancestors and itself and to
nothing else: that is what the same token sees in the pair alone, under causal attention. In depth-first order the
ancestors of node j are exactly the nodes k <= j whose subtree reaches past j (`k <= j < subtree_end[k]`), so the
mask needs one number per node. Each pair is pooled at the node of its last token.

Why hand-written: transformers' packed-sequence support (flash-attention varlen, or packed `position_ids`) keeps
sequences apart; it has no way for two sequences to share a prefix. The masks are 4D (one per layer type for
models that take a mapping: Gemma-3's `full_attention`, and `sliding_attention` with the window applied to
within-pair distances), for the `sdpa` and `eager` kernels, and the same rule as `BlockMask`s for
`flex_attention` (see `flex_masks`). Causal decoders pooling the last token or the mean only: an
encoder's tokens also see later tokens, which differ between the pairs that share a prefix.

Packed rows (`pack(..., share=False)`) are the same rows with nothing merged: each pair its own chain of nodes at
positions 0, 1, ..., so the same `subtree_end` expresses a block-diagonal causal mask (padding-free packing, as
flash-attention's varlen does, but through the 4D mask that sdpa and eager take).

Packing is exact whatever rows it is given; the trainer's `shared` batching (`mtl.sampling`) draws batches that
keep a query's pairs together, so that there is something to share, and `packed` batching shuffled batches laid
out as packed rows. `benchmarks/bench.py` measures them against bucketing; `resolve_batching` says what `auto`
picks.
"""

from __future__ import annotations

import numpy as np
import torch

from mtl.data.tasks import TaskData
from mtl.errors import ConfigError

MASKED_KERNELS = ("sdpa", "eager", "flex_attention")
"""Attention kernels that take the masks `tree_masks` builds (flash-attention takes none)."""

TREE_BATCHINGS = ("shared", "packed")
"""The `train.batching` values whose batches are laid out by `pack` (shared: prefixes merged; packed: not)."""


def pack(data: TaskData, rows, pad_id: int, row_tokens: int, share: bool = True) -> dict:
    """Tensors for `rows` of one task as prefix-tree rows of about `row_tokens` nodes each; with `share` off, packed
    rows: each pair its own chain of nodes, nothing merged (a block-diagonal causal mask).

    Returns `input_ids`, `position_ids` (node depth) and `subtree_end` [n_rows, width]; `pool_at` [len(rows), 2],
    the (row, column) of each pair's last token in the order of `rows`; `labels`/`features` in that order;
    `tokens` (the pairs' own token count), `computed` (tree nodes, the tokens actually computed) and `used`
    (nodes per row)."""
    rows = np.asarray(rows)
    sequences = [tuple(data.input_ids[r]) for r in rows]
    order = sorted(range(len(rows)), key=lambda i: sequences[i])  # pairs with a common prefix become neighbours
    units = split_units([sequences[i] for i in order], order, share, max(1, data.shared_prefix))
    n_rows = max(1, -(-sum(cost for cost, _ in units) // row_tokens))
    # Longest unit first onto the least-filled row: rows come out nearly equal, so little is left to pad.
    fill, members = [0] * n_rows, [[] for _ in range(n_rows)]
    for cost, unit in sorted(units, key=lambda u: -u[0]):
        target = int(np.argmin(fill))
        fill[target] += cost
        members[target].extend(unit)
    members = [sorted(m, key=lambda i: sequences[i]) for m in members if m]
    trees = [prefix_tree([sequences[i] for i in m], share) for m in members]
    width = max(len(tree[0]) for tree in trees)

    input_ids = torch.full((len(trees), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(trees), width), dtype=torch.long)
    # Padding nodes are leaves that only see themselves: no real node attends to them (they come later and are
    # no one's descendants) and none has an empty mask row (an all-masked row gives NaN in sdpa, and 0 * NaN
    # would reach the gradients).
    subtree_end = torch.arange(1, width + 1).repeat(len(trees), 1)
    pool_at = torch.empty((len(rows), 2), dtype=torch.long)
    for r, ((tokens, depth, end, last), pairs) in enumerate(zip(trees, members)):
        n = len(tokens)
        input_ids[r, :n], position_ids[r, :n], subtree_end[r, :n] = (torch.tensor(x) for x in (tokens, depth, end))
        for i, node in zip(pairs, last):
            pool_at[i] = torch.tensor([r, node])
    batch = {"task": data.task, "input_ids": input_ids, "position_ids": position_ids, "subtree_end": subtree_end,
             "pool_at": pool_at, "rows": torch.as_tensor(rows, dtype=torch.long),
             "tokens": int(data.lengths[rows].sum()), "computed": sum(len(t[0]) for t in trees),
             "used": [len(t[0]) for t in trees]}
    if "label" in data.records:
        batch["labels"] = torch.as_tensor(data.labels[rows], dtype=torch.float32)
    if data.features is not None:
        batch["features"] = torch.as_tensor(data.features[rows], dtype=torch.float32)
    return batch


def model_inputs(batch: dict, device) -> dict:
    """What `MultiTaskClassifier.forward` takes from a padded batch (`collate`) or from prefix-tree rows (`pack`)."""
    names = ("input_ids", "attention_mask", "position_ids", "subtree_end", "pool_at", "features")
    return {name: batch[name].to(device) for name in names if name in batch}


def split_units(sorted_sequences: list[tuple], indices: list[int], share: bool = True,
                floor: int = 1) -> list[tuple[int, list[int]]]:
    """Runs of sorted pairs that share more than the `floor` leading tokens every pair has (`<bos>`, a prompt
    template's opening: every row computes those anyway), each with the nodes it adds to a row: a unit stays in one
    row so its shared prefix is computed once. Without `share`, every pair is a unit of its own length."""
    units: list[tuple[int, list[int]]] = []
    previous: tuple = ()
    for seq, i in zip(sorted_sequences, indices):
        common = common_prefix(previous, seq) if share else 0
        if units and common > floor:
            cost, members = units[-1]
            units[-1] = (cost + len(seq) - common, members + [i])
        else:
            units.append((len(seq) - min(common, floor), [i]))
        previous = seq
    return units


def prefix_tree(sorted_sequences: list[tuple], share: bool = True) -> tuple[list[int], list[int], list[int], list[int]]:
    """Nodes of the trie of `sorted_sequences` in depth-first order: token ids, depths, subtree ends (one past the
    last descendant), and the node where each sequence ends. Sorted input lists the trie depth first, and a
    sequence shares with the trie exactly what it shares with the sequence before it. Without `share`, a forest of
    one chain per sequence: its nodes' subtrees all end where the chain does."""
    tokens, depth, end, last = [], [], [], []
    path: list[int] = []  # the nodes of the previous sequence, root first
    previous: tuple = ()
    for seq in sorted_sequences:
        common = common_prefix(previous, seq) if share else 0
        for node in path[common:]:
            end[node] = len(tokens)
        del path[common:]
        for token in seq[common:]:
            path.append(len(tokens))
            tokens.append(token)
            depth.append(len(path) - 1)
            end.append(-1)
        last.append(path[len(seq) - 1])
        previous = seq
    for node in path:
        end[node] = len(tokens)
    return tokens, depth, end, last


def common_prefix(a: tuple, b: tuple) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def path_weights(subtree_end: torch.Tensor, pool_at: torch.Tensor) -> torch.Tensor:
    """[pairs, width]: 1 on the nodes of each pair's own tokens (the ancestors of its last node, and that node) in
    its row, 0 elsewhere: what the pair's mean pooling averages, as the padded batch's attention mask does."""
    width = subtree_end.shape[1]
    node = torch.arange(width, device=subtree_end.device)
    last = pool_at[:, 1:2]
    return ((node[None, :] <= last) & (last < subtree_end[pool_at[:, 0]])).to(torch.float32)


def tree_masks(position_ids: torch.Tensor, subtree_end: torch.Tensor, config, dtype: torch.dtype):
    """Ancestor-or-self masks [rows, 1, width, width] for prefix-tree rows: boolean (True = attend) for sdpa,
    additive for eager, a `BlockMask` for flex attention; a mapping per layer type for models that have several."""
    implementation = config._attn_implementation
    if implementation not in MASKED_KERNELS:
        raise ValueError(f"prefix-tree rows need a kernel that takes a mask ({', '.join(MASKED_KERNELS)}); this "
                         f"model uses {implementation!r}")
    window = getattr(config, "sliding_window", None)
    if implementation == "flex_attention":
        kinds = flex_masks(position_ids, subtree_end, window)
    else:
        width = position_ids.shape[1]
        node = torch.arange(width, device=position_ids.device)
        allowed = (node[None, None, :] <= node[None, :, None]) & (node[None, :, None] < subtree_end[:, None, :])
        kinds = {"full_attention": allowed}
        if window:
            distance = position_ids[:, :, None] - position_ids[:, None, :]  # within a pair: query - key position
            kinds["sliding_attention"] = allowed & (distance < window)  # transformers' convention
        if implementation == "eager":
            kinds = {k: torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(~m, torch.finfo(dtype).min)
                     for k, m in kinds.items()}
        kinds = {k: m[:, None] for k, m in kinds.items()}
    layer_types = getattr(config, "layer_types", None)
    if not layer_types:
        return kinds["full_attention"]
    unknown = set(layer_types) - set(kinds)
    if unknown:
        raise ValueError(f"prefix-tree rows have no mask for layer types {sorted(unknown)}")
    return {t: kinds[t] for t in set(layer_types)}


def flex_masks(position_ids: torch.Tensor, subtree_end: torch.Tensor, window: int | None) -> dict:
    """The same rule as a flex-attention `mask_mod` (`create_block_mask`), which transformers passes through to
    `flex_attention` as it is: blocks of nodes that see none of each other (other pairs of a packed row) are
    skipped rather than computed and masked."""
    from torch.nn.attention.flex_attention import create_block_mask

    rows, width = position_ids.shape

    def ancestor(b, h, q, kv):
        return (kv <= q) & (q < subtree_end[b, kv])

    def in_window(b, h, q, kv):
        return ancestor(b, h, q, kv) & (position_ids[b, q] - position_ids[b, kv] < window)

    kinds = {"full_attention": ancestor, **({"sliding_attention": in_window} if window else {})}
    return {k: create_block_mask(m, rows, None, width, width, device=position_ids.device) for k, m in kinds.items()}


def resolve_batching(batching: str, model) -> str:
    """`train.batching` for `model`: `auto` is shared where tree rows reproduce the model's logits, bucket elsewhere;
    `shared` or `packed` on a model they would not reproduce is refused.

    `auto` picks shared on CPU and on CUDA alike: shared rows are packed rows with common prefixes merged, built by
    the same code and run through the same masks and kernels, so they never compute more tokens or attention pairs
    (unmeasured on a GPU here: `benchmarks/bench.py` runs packed and bucket beside it to check)."""
    reason = why_not_packable(model)
    if batching == "auto":
        return "bucket" if reason else "shared"
    if batching in TREE_BATCHINGS and reason:
        raise ConfigError(f"train.batching={batching} {reason}: use train.batching=bucket")
    return batching


def why_not_packable(model) -> str | None:
    """Why prefix-tree rows would not reproduce `model`'s logits (None: they do): pooling other than the last token
    or the mean of a decoder's tokens (a causal token's state depends on its prefix only, so a shared node is the
    same for every pair through it), positions not encoded by rotary embeddings (the only kind the tests compare
    against padded batches), or an attention kernel that takes no mask (flash-attention)."""
    if model.pooling not in ("last", "mean") or getattr(model, "arch", "decoder") != "decoder":
        return f"needs a decoder pooling its last token or its mean; this model pools {model.pooling!r}"
    base = model.backbone.get_base_model()
    implementation = getattr(base.config, "_attn_implementation", None)
    if implementation not in MASKED_KERNELS:
        return f"needs sdpa, eager or flex attention (a mask); this model uses {implementation!r}"
    if not is_rotary(base):
        return (f"supports rotary position embeddings only; {type(base).__name__} encodes positions otherwise, "
                "which no test here checks (see mtl.packing)")
    return None


def is_rotary(backbone) -> bool:
    """Whether `backbone` encodes positions with rotary embeddings (a `*RotaryEmbedding` module: Gemma, Llama,
    Qwen, Mistral, ...). A rotary model applied through functions only reads as not rotary: refused, never wrong."""
    return any("rotary" in type(module).__name__.lower() for module in backbone.modules())
