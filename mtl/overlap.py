"""Word-overlap features of a query and a product title, for the QI head (`model.qi_features=overlap`).

    X = overlap_features(["cordless drill"], ["DEWALT 20V Cordless Drills Kit"])   # float32 [1, len(OVERLAP_FEATURES)]

Why a fine-tuned model gets hand-made features: on the real QI data (Home Depot) a logistic regression on these
features ranks pairs about as well as the CPU recipe's fine-tuned 270M (benchmarks/real/README.md), and a pair's
exact and near-exact word matches are what a pooled vector of a few hundred training steps may represent worst.
The head reads them beside the pooled vector, so the model can learn what overlap misses rather than overlap itself.
Written by hand: they are a few set operations on words, which no library offers as such; computed from the
pair's text alone (no statistics fitted on training labels), so training, validation and `mtl predict` read them
alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

OVERLAP_FEATURES = ("word_share", "stem_share", "trigram_share", "last_word", "query_words")
"""Columns, in order: share of query words found in the title; share of query words whose first 4 characters begin
a title word (plurals, inflections); share of the query's character 3-grams found in the title; whether the query's
last word (often its head noun) matches so; log2(1 + query words) / 4, since long queries match less."""

SHARE_BINS = ("=0", "<=1/3", "<=1/2", "<3/4", "<1", "=1")
"""Bins of a share: none, at most a third, at most half, under three quarters, under all, all."""
MAX_WORDS = 5
BINNED_FEATURES = (
    *(f"{share}{b}" for share in OVERLAP_FEATURES[:3] for b in SHARE_BINS),
    *(f"query_words={n}" for n in range(1, MAX_WORDS)), f"query_words>={MAX_WORDS}",
    *(f"stem_share*query_words={n}" for n in range(1, MAX_WORDS)), f"stem_share*query_words>={MAX_WORDS}",
    "stem_share*last_word")
"""`overlap_binned` adds these to `OVERLAP_FEATURES`: each share one-hot in `SHARE_BINS`, the query's word count
one-hot, the stem share per word count, and the stem share where the last word matches (all zero for a query
without words). A linear head cannot bend a column: on real QI fold 0 a logistic regression on the five raw columns
reached validation AUC 0.710 and one on these fixed bins 0.727, as much as gradient-boosted trees on the raw five
(benchmarks/results/overlap-real-qi-fold0*.md). Fixed edges, not fitted ones, so the columns stay a function of the
pair's text alone."""
FEATURE_SETS = {"none": (), "overlap": OVERLAP_FEATURES, "overlap_binned": OVERLAP_FEATURES + BINNED_FEATURES}
"""`model.qi_features` -> the names of the columns the QI head reads beside its pooled vector."""

_WORD = re.compile(r"\w+")
STEM = 4


def feature_dim(qi_features: str) -> int:
    """Columns the QI head reads beside its pooled vector under `model.qi_features=qi_features`."""
    return len(FEATURE_SETS[qi_features])


def feature_set(width: int) -> str:
    """The `model.qi_features` value whose columns number `width` (each set has its own width)."""
    for name, names in FEATURE_SETS.items():
        if len(names) == width:
            return name
    raise ValueError(f"no word-overlap feature set has {width} columns: {sorted(map(len, FEATURE_SETS.values()))}")


def _trigrams(text: str) -> set[str]:
    text = " ".join(_WORD.findall(text))
    return {text[i:i + 3] for i in range(len(text) - 2)}


def _share_bin(share: float) -> list[float]:
    # exact: a share is k/n computed in float64, and k/n == 1/3 for every k/n equal to a third
    edges = (share == 0, share <= 1 / 3, share <= 1 / 2, share < 3 / 4, share < 1, True)
    first = edges.index(True)
    return [float(i == first) for i in range(len(SHARE_BINS))]


def pair_overlap(query: str, title: str, binned: bool = False) -> list[float]:
    """One pair's `OVERLAP_FEATURES`, then with `binned` its `BINNED_FEATURES` (lower-cased words; a query without
    words gets zeros)."""
    query, title = str(query).lower(), str(title).lower()
    words = _WORD.findall(query)
    if not words:
        return [0.0] * feature_dim("overlap_binned" if binned else "overlap")
    title_words = set(_WORD.findall(title))
    stems = {w[:STEM] for w in title_words}
    starts = {w[:n] for w in title_words for n in range(1, min(len(w), STEM) + 1)}  # a short query word begins one

    def stem_match(word: str) -> bool:
        return word[:STEM] in stems if len(word) >= STEM else word in starts

    grams = _trigrams(query)
    shares = [sum(w in title_words for w in words) / len(words),
              sum(stem_match(w) for w in words) / len(words),
              len(grams & _trigrams(title)) / len(grams) if grams else 0.0]
    last_word = float(stem_match(words[-1]))
    raw = [*shares, last_word, math.log2(1 + len(words)) / 4]
    if not binned:
        return raw
    count = [float(min(len(words), MAX_WORDS) == n) for n in range(1, MAX_WORDS + 1)]
    return [*raw, *(b for share in shares for b in _share_bin(share)), *count, *(shares[1] * c for c in count),
            shares[1] * last_word]


def overlap_features(queries: Sequence[str], titles: Sequence[str], binned: bool = False) -> np.ndarray:
    """float32 [pairs, len(OVERLAP_FEATURES) (+ len(BINNED_FEATURES) with `binned`)]."""
    out = np.zeros((len(queries), feature_dim("overlap_binned" if binned else "overlap")), dtype=np.float32)
    for i, (query, title) in enumerate(zip(queries, titles)):
        out[i] = pair_overlap(query, title, binned)
    return out
