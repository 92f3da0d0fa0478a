"""Pairs: cleaned records -> (query text, target text) -> token ids, tokenized once and cached with `datasets`.

The query side is `"<origin_query> - <translated_query>"` when translation augmentation is on and a translation that
differs from the query exists (the paper's TA), else the query alone. The QC target is the category path, written
level by level (`a > b > c`) when `taxonomy.render=levels` so the model sees where one level ends, or from the leaf up
(`c < b < a`, `leaf_first`).

Decoders read `<bos> query \\n target <eos>` with right padding (`data.template=plain`); the last token, `<eos>`, has
attended to both sides. (The GGUF Gemma tokenizer's own pair template, `<bos>A<bos>B`, puts a second attention-sink
token mid-sequence, so the format is set here deliberately.) `data.template=prompt` wraps the same two sides in a
question that ends where a language model would answer it (`PROMPT`): a pretrained decoder has seen text like it, so
the last token's state may already hold a judgement of the pair before any fine-tuning. Encoders use the tokenizer's
own pair template.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from mtl.data.records import TARGET_FIELD
from mtl.errors import ConfigError
from mtl.io import atomic_dir
from mtl.taxonomy import parse_path, render_levels

FORMAT_VERSION = "1"
"""Bump when the pair format changes, so cached token ids from the old format are not reused."""

_PROBE = "кухонная посуда 厨房 キッチン 주방 مطبخ रसोई ครัว cookware"
"""Multilingual probe whose token ids identify a tokenizer in fingerprints."""


PROMPT = ("Search query:\n", "\nResult:\n", "\nIs this result relevant to the search query? Answer:")
"""`data.template=prompt`: the text before the query, between query and target, and after the target. One wording
for both tasks, since one tokenizer serves a joint model's QC and QI pairs. The pieces end and start at newlines so
that each side tokenizes as it does alone."""


def query_text(origin: str, translated: str, use_translation: bool) -> str:
    if use_translation and translated and translated != origin:
        return f"{origin} - {translated}"
    return origin


def target_text(task: str, target: str, render: str) -> str:
    if task != "qc" or render == "raw":
        return target
    if render == "levels":
        return render_levels(target)
    if render == "leaf_first":
        return " < ".join(reversed(parse_path(target)))
    raise ValueError(f"taxonomy.render={render!r}: expected raw, levels or leaf_first")


def build_pairs(records: pd.DataFrame, task: str, use_translation: bool, render: str) -> pd.DataFrame:
    """One row per record: `text_a` (query side), `text_b` (target side)."""
    text_a = [query_text(q, t, use_translation) for q, t in zip(records["origin_query"], records["translated_query"])]
    text_b = [target_text(task, t, render) for t in records[TARGET_FIELD[task]]]
    return pd.DataFrame({"text_a": text_a, "text_b": text_b})


class PairTokenizer:
    """Turns text pairs into token ids, identically in training, evaluation and prediction."""

    def __init__(self, tokenizer, arch: str, max_length: int, template: str = "plain"):
        self.tokenizer, self.arch, self.max_length, self.template = tokenizer, arch, max_length, template
        tokenizer.padding_side = "right"
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if self.pad_id is None:
            raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has neither a pad nor an eos token")
        if template not in ("plain", "prompt"):
            raise ConfigError(f"data.template={template!r}: expected plain or prompt")
        if template == "prompt" and arch != "decoder":
            raise ConfigError("data.template=prompt is for decoders; an encoder reads a pair through its tokenizer's "
                              "own pair template: set data.template=plain")
        if arch == "decoder":
            bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
            if template == "prompt":
                before, between, after = (tokenizer.encode(text, add_special_tokens=False) for text in PROMPT)
                self.prefix, self.sep, self.suffix = bos + before, between, after
            else:
                self.prefix = bos
                self.suffix = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
                self.sep = tokenizer.encode("\n", add_special_tokens=False)
            fixed = len(self.prefix) + len(self.sep) + len(self.suffix)
            if max_length - fixed < 2:
                raise ConfigError(f"data.max_length={max_length} leaves no room for a pair after the {fixed} tokens "
                                  f"of data.template={template}: raise data.max_length")

    def encode(self, text_a: list[str], text_b: list[str]) -> list[list[int]]:
        if self.arch == "encoder":
            return self.tokenizer(text_a, text_b, truncation=True, max_length=self.max_length)["input_ids"]
        ids_a = self.tokenizer(text_a, add_special_tokens=False)["input_ids"]
        ids_b = self.tokenizer(text_b, add_special_tokens=False)["input_ids"]
        budget = self.max_length - len(self.prefix) - len(self.sep) - len(self.suffix)
        out = []
        for a, b in zip(ids_a, ids_b):
            if len(a) + len(b) > budget:
                # Target first: a title's tail matters less than the query, but the query may not take it all.
                b = b[: max(budget - len(a), budget // 2)]
                a = a[: budget - len(b)]
            out.append(self.prefix + a + self.sep + b + self.suffix)
        return out

    def fingerprint(self) -> str:
        """Identifies vocabulary, special tokens and pair format: a saved model refuses a tokenizer that differs."""
        tok = self.tokenizer
        probe = tok.encode(_PROBE, add_special_tokens=False)
        parts = [FORMAT_VERSION, self.arch, str(self.max_length), type(tok).__name__, str(len(tok)), str(probe),
                 str((tok.bos_token_id, tok.eos_token_id, self.pad_id))]
        if self.template != "plain":  # appended only here, so models saved before templates keep their fingerprint
            parts.append(f"{self.template}:{self.prefix}:{self.sep}:{self.suffix}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def tokenize_pairs(pairs: pd.DataFrame, pair_tokenizer: PairTokenizer, cache_dir: str | Path | None) -> list[list[int]]:
    """Token ids per pair. With a cache_dir, the result is saved as a `datasets` folder keyed by the pairs' content
    and the tokenizer fingerprint, so a second run (or another fold) on the same data skips tokenization."""
    import datasets  # imported here: code that batches pairs tokenized elsewhere (benchmarks/gpu_bench.py, on a
    # machine without `datasets`) imports this module too
    content = pd.util.hash_pandas_object(pairs[["text_a", "text_b"]], index=False).values.tobytes()
    key = hashlib.sha256(content + pair_tokenizer.fingerprint().encode()).hexdigest()[:20]
    folder = Path(cache_dir) / "tokenized" / key if cache_dir else None
    if folder is not None and folder.is_dir():
        return datasets.load_from_disk(str(folder))["input_ids"]

    table = datasets.Dataset.from_pandas(pairs[["text_a", "text_b"]], preserve_index=False)
    table = table.map(
        lambda batch: {"input_ids": pair_tokenizer.encode(batch["text_a"], batch["text_b"])},
        batched=True, batch_size=1000, remove_columns=["text_a", "text_b"], desc="tokenizing",
        keep_in_memory=True,
    )
    if folder is not None:
        with atomic_dir(folder) as tmp:
            table.save_to_disk(str(tmp))
    return table["input_ids"]
