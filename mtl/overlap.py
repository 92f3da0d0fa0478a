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

_WORD = re.compile(r"\w+")
STEM = 4


def feature_dim(qi_features: str) -> int:
    """Columns the QI head reads beside its pooled vector under `model.qi_features=qi_features`."""
    return len(OVERLAP_FEATURES) if qi_features == "overlap" else 0


def _trigrams(text: str) -> set[str]:
    text = " ".join(_WORD.findall(text))
    return {text[i:i + 3] for i in range(len(text) - 2)}


def pair_overlap(query: str, title: str) -> list[float]:
    """One pair's `OVERLAP_FEATURES` (lower-cased words; a query without words gets zeros)."""
    query, title = str(query).lower(), str(title).lower()
    words = _WORD.findall(query)
    if not words:
        return [0.0] * len(OVERLAP_FEATURES)
    title_words = set(_WORD.findall(title))
    stems = {w[:STEM] for w in title_words}
    starts = {w[:n] for w in title_words for n in range(1, min(len(w), STEM) + 1)}  # a short query word begins one

    def stem_match(word: str) -> bool:
        return word[:STEM] in stems if len(word) >= STEM else word in starts

    grams = _trigrams(query)
    return [sum(w in title_words for w in words) / len(words),
            sum(stem_match(w) for w in words) / len(words),
            len(grams & _trigrams(title)) / len(grams) if grams else 0.0,
            float(stem_match(words[-1])),
            math.log2(1 + len(words)) / 4]


def overlap_features(queries: Sequence[str], titles: Sequence[str]) -> np.ndarray:
    """float32 [pairs, len(OVERLAP_FEATURES)]."""
    out = np.zeros((len(queries), len(OVERLAP_FEATURES)), dtype=np.float32)
    for i, (query, title) in enumerate(zip(queries, titles)):
        out[i] = pair_overlap(query, title)
    return out
