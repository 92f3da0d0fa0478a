"""The text an exported mtl model reads: mtl's cleaning, query + translation, category-level rendering and pair
template, for serving without mtl. `mtl export` copies this file, unchanged, next to each task's model with the
settings it was trained with in `preprocess.json`; it needs only the Python standard library.

    import preprocess                                    # from the exported task folder
    from transformers import pipeline
    classify = pipeline("text-classification", model=folder)
    inputs = preprocess.pair("Zapatos  Nike", "nike air zoom pegasus", translated_query="nike shoes")
    score = classify(inputs)[0]["score"]                 # relevant iff score >= config.json's mtl_threshold

`pair` gives the (text, text_pair) inputs on which the saved tokenizer's template yields exactly the token ids mtl
feeds the model, as long as the pair fits `max_length` tokens. Longer pairs: mtl cuts the target first and leaves
the query at least half, which a tokenizer's own `truncation=True` does not do (and a pipeline called without it
does not cut at all); `encode` gives mtl's ids in every case. `text` is the pair as one string, for stacks that take
one (its tokens can differ from the pair's where the tokenizer merges across the separator). A pair whose query or
target shows nothing gets None: mtl predicts it 0 without asking the model.
"""

from __future__ import annotations

import functools
import json
import re
import string
import unicodedata
from pathlib import Path


@functools.cache
def settings() -> dict:
    """task, clean, lowercase, translation, render, arch, template, max_length, and for decoders the prefix,
    separator and suffix token ids and the separator's text: `preprocess.json` beside this file, read on first use
    (so the copy inside the mtl package, which has none, still imports)."""
    return json.loads(Path(__file__).with_name("preprocess.json").read_text(encoding="utf-8"))

_LEVEL_SEP = re.compile(r",(?! )")
"""A category level separator is a comma not followed by a space; ", " belongs inside a level name."""
_EDGE_CHARS = string.whitespace + ","
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def clean(text: str) -> str:
    """Whitespace collapsed (`data.clean`) and lower-cased (`data.lowercase`), as mtl cleans every field; None reads as
    empty, as a JSON null does in mtl."""
    text = "" if text is None else str(text)
    if settings()["clean"]:
        text = " ".join(text.split())
    return text.lower() if settings()["lowercase"] else text


def is_blank(text: str) -> bool:
    """Nothing visible: only whitespace and invisible characters (Unicode categories Cc, Cf, Z*)."""
    return all(c.isspace() or unicodedata.category(c) in _INVISIBLE for c in text)


def levels(path: str) -> list[str]:
    """A category path's levels: outer whitespace and edge commas stripped, empty levels dropped."""
    return [level for level in (part.strip(_EDGE_CHARS) for part in _LEVEL_SEP.split(path)) if level]


def query_text(query: str, translated_query: str = "") -> str:
    """`"<query> - <translation>"` when the model was trained with translations and one that differs is given."""
    query, translated = clean(query), clean(translated_query or "")
    if settings()["translation"] and translated and translated != query:
        return f"{query} - {translated}"
    return query


def target_text(target: str) -> str:
    """The category path level by level (`a > b > c`, or `c < b < a` for `leaf_first`) where the model was trained
    so, else the cleaned target."""
    target, render = clean(target), settings()["render"]
    if settings()["task"] != "qc" or render == "raw":
        return target
    if render == "levels":
        return " > ".join(levels(target))
    if render == "leaf_first":
        return " < ".join(reversed(levels(target)))
    raise ValueError(f"preprocess.json: field 'render': {render!r} is not raw, levels or leaf_first")


def readable(query: str, target: str) -> bool:
    """Whether mtl would score the pair: a query and a target (a category path with a level) that show something."""
    query, target = clean(query), clean(target)
    if is_blank(query) or is_blank(target):
        return False
    return settings()["task"] != "qc" or bool(levels(target))


def pair(query: str, target: str, translated_query: str = "") -> dict | None:
    """{"text": query side, "text_pair": target side}, the input a text-classification pipeline takes; None if the
    pair is not `readable`."""
    if not readable(query, target):
        return None
    return {"text": query_text(query, translated_query), "text_pair": target_text(target)}


def text(query: str, target: str, translated_query: str = "") -> str | None:
    """The pair as one string (decoders: query side, separator, target side); None if the pair is not `readable`."""
    sides = pair(query, target, translated_query)
    if sides is None:
        return None
    if settings()["arch"] != "decoder":
        raise ValueError("an encoder reads the pair through its tokenizer's pair template: use pair()")
    return sides["text"] + settings()["separator"] + sides["text_pair"]


def encode(tokenizer, query: str, target: str, translated_query: str = "") -> list[int] | None:
    """The token ids mtl feeds the model, truncation included, with the tokenizer saved next to this file (any
    object called as Hugging Face tokenizers are); None if the pair is not `readable`."""
    sides = pair(query, target, translated_query)
    if sides is None:
        return None
    if settings()["arch"] != "decoder":
        return tokenizer(sides["text"], sides["text_pair"], truncation=True,
                         max_length=settings()["max_length"])["input_ids"]
    a, b = (tokenizer(sides[key], add_special_tokens=False)["input_ids"] for key in ("text", "text_pair"))
    prefix, sep, suffix = settings()["prefix"], settings()["separator_ids"], settings()["suffix"]
    budget = settings()["max_length"] - len(prefix) - len(sep) - len(suffix)
    if len(a) + len(b) > budget:
        b = b[: max(budget - len(a), budget // 2)]
        a = a[: budget - len(b)]
    return prefix + a + sep + b + suffix
