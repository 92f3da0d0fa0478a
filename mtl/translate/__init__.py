"""Translation augmentation: fill `translated_query` with an English translation of every non-English query.

    mtl translate --input train_QI.txt --output train_QI.translated.jsonl --model models/madlad400-3b-mt
    mtl translate --input test_QC.txt --output test_QC.translated.jsonl --backend llm --model models/gemma-3-1b-it
    mtl translate --input train_QC.txt --output train_QC.checked.jsonl --backend column

    summary = translate_file("train_QI.txt", "train_QI.translated.jsonl", model="models/nllb-200-distilled-600M")

The paper's strongest single trick (TA): the model reads `"<origin_query> - <translated_query>"` (`mtl.data.pairs`,
switched by `augment.translation`). Per row, in this order:
1. a non-empty `translated_query` is kept;
2. `language` en: the query is its own translation;
3. a query that looks English (below; `detect_english=False` turns this off) likewise;
4. the rest is translated. Distinct texts (whitespace collapsed) missing from the cache are translated in batches
   sorted by language and length, each batch committed to the cache (`mtl.translate.cache`), then fanned out to every
   row that carries them. Each text is translated once, from the language most of its rows carry.

A model that cannot load stops the run with one error before anything is written (it loads once, on the first text
that needs it). A batch that raises is retried in halves down to single texts; a text that still fails, or comes back
empty, is counted and logged, its rows keep an empty `translated_query`, and it is not cached, so the next run
retries it. An
interruption loses at most the batch in flight: run the same command again to resume. The output is written
atomically and the input is never touched. The `column` backend translates nothing: it checks the input has the
column, applies steps 1-3 and reports how many rows still lack a translation.

Looks English: pure ASCII, and every word is in ENGLISH_WORDS (common English shopping words, leaving out those that
mean something else in a language of the data: Spanish "pan", German "rock"/"gift", French "chat"/"pull",
Vietnamese "may"/"but"...), in BRANDS, or has a digit (sizes, models); with at least one ENGLISH_WORDS word. So
`nike running shoes` under es passes through; `zapatillas nike`, `pan` and `nike` alone do not.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from mtl.data.records import RAW, is_blank, read_records, write_records
from mtl.errors import ConfigError, DataError, MtlError
from mtl.io import check_output_path
from mtl.translate.backends import BACKENDS, ColumnTranslator, Translator, base_language
from mtl.translate.cache import TranslationCache

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "Translator", "default_cache_path", "looks_english", "translate_file"]

ENGLISH_WORDS = frozenset("""
adapter air alarm and baby backpack bag bags ball balls bath battery beach bed bedding belt bike black blanket
blender blocks blouse blue bluetooth board book books boots bottle bowl box boys bra bracelet brown brush bucket
building cable cake camera candle candy cap card cards carpet case cat chair charger cheap chocolate cleaner clock
coat coffee cold controller cooker cookies cotton cover cream cup curtain curtains cushion cutting desk digital dog
doll door dress drill drink dryer earbuds earphones earrings electric external eyeshadow fan fashion fish floor flour
flower food for frame fresh fridge frying game games gaming garden girls glass glasses gloves gold gray green grey
guitar hair hammer hand hard hat hdmi headphones heater helmet holder home honey hoodie hot ice iron jacket jeans
juice kettle keyboard kids kit kitchen knife lamp laptop large leather led leggings light lights lipstick machine
makeup mask mats mattress men mens microphone milk mini mirror mobile monitor motorcycle mouse mug necklace new
notebook of office oil orange organic organizer original outdoor oven pack paint pants paper party pen pencil perfume
phone pillow pink plate portable power printer pro protector purple purse rack razor remote rice ring running sandals
saucepan scarf screen screwdriver seat set shampoo shelf shirt shoes shorts shower silver skincare sleeping slim small
smart smartphone smartwatch sneakers soap socks sofa soft speaker sports spray stand steel sticker storage stove suit
sunglasses sunscreen sweater t-shirt table tablet tea tennis tent the toothbrush toothpaste towel toy toys tray
trimmer trousers tv umbrella usb usb-c vacuum wall wallet watch water white wifi wireless with women womens wooden
yellow yoga
""".split())
"""Lower-case English shopping words that are not also common words of another language in the data."""

BRANDS = frozenset("""
acer adidas airpods alexa amd anker apple asus barbie baseus bosch calvin canon casio colgate converse crocs dell
dewalt dove dyson fitbit garmin gillette google gopro gucci guess hilfiger hp huawei huggies ikea intel iphone ipad jbl
karcher kindle kingston klein lego lenovo levis lg lindt logitech loreal mac macbook makita maybelline motorola msi
nespresso nestle nike nikon nintendo nivea nokia nutella nvidia oneplus oppo oreo pampers philips pixel playstation
prada puma ray-ban realme redmi reebok revlon rolex samsung sandisk skechers sony starbucks tefal tommy vans wilson
xbox xiaomi zara
""".split())
"""Brand names that read the same in every language (left out: `braun`, German for brown; `vivo`, Spanish alive)."""

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def looks_english(query: str) -> bool:
    """The conservative "already English" rule of the module docstring."""
    if not query.isascii():
        return False
    words = [w.removesuffix("'s") for w in _WORD.findall(query.lower())]
    return (any(w in ENGLISH_WORDS for w in words)
            and all(w in ENGLISH_WORDS or w in BRANDS or any(c.isdigit() for c in w) for w in words))


def default_cache_path() -> Path:
    """`$MTL_CACHE_DIR/translations.sqlite`, default `~/.cache/mtl/translations.sqlite`."""
    from mtl.backbone import cache_root

    return cache_root() / "translations.sqlite"


def translate_file(input_path: str | Path, output_path: str | Path, backend: str = "seq2seq",
                   model: str | Path | None = None, *, task: str | None = None, batch_size: int = 32,
                   cache_path: str | Path | None = None, device: str = "cpu", max_new_tokens: int | None = None,
                   num_beams: int = 1, model_id: str | None = None, detect_english: bool = True,
                   translator: Translator | None = None, progress: bool = True) -> dict:
    """Write `input_path`'s records to `output_path` with `translated_query` filled; returns the counts.

    `backend` names an entry of BACKENDS built from the local folder `model`; a ready `translator` overrides both.
    `cache_path` None means `default_cache_path()`; ":memory:" keeps nothing between runs.
    """
    start = time.monotonic()
    input_path, output_path = Path(input_path), Path(output_path)
    check_output_path(output_path, "--output", inputs=[input_path])
    for flag, value, least in (("--batch-size", batch_size, 1), ("--num-beams", num_beams, 1),
                               ("--max-new-tokens", 1 if max_new_tokens is None else max_new_tokens, 1)):
        if value < least:
            raise ConfigError(f"{flag} must be at least {least}, got {value}")
    if translator is None:
        if backend not in BACKENDS:
            raise ConfigError(f"unknown translation backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend != "column":
            if not model:
                raise ConfigError(f"the {backend} backend needs a local model folder (--model PATH)")
            from mtl.backbone import check_device

            check_device(device)
        # Cheap: model weights load on the first text that needs them.
        translator = BACKENDS[backend](model, device=device, max_new_tokens=max_new_tokens, num_beams=num_beams,
                                       model_id=model_id)

    records, _ = read_records(input_path, task)
    if isinstance(translator, ColumnTranslator) and not records[RAW].map(lambda raw: "translated_query" in raw).any():
        raise DataError(input_path, None, "translated_query",
                        "absent from every record; the column backend only uses translations the input has")

    out = records.copy()
    origin = out["origin_query"]
    kept = ~out["translated_query"].map(is_blank)
    english = ~kept & (out["language"].map(base_language) == "en")
    looks = ~kept & ~english & (origin.map(looks_english) if detect_english else False)
    out.loc[english | looks, "translated_query"] = origin[english | looks]
    sources = origin.map(lambda s: " ".join(s.split()))
    todo = ~kept & ~english & ~looks & ~sources.map(is_blank)
    language_of = _majority_language(sources[todo], out.loc[todo, "language"])
    # Grouping by language keeps NLLB/M2M100 batches to one source language; length keeps padding small.
    distinct = sorted(language_of, key=lambda s: (language_of[s], len(s), s))

    translations, failures, hits, calls = {}, {}, 0, 0
    if not isinstance(translator, ColumnTranslator):
        cache_path = cache_path or default_cache_path()
        translations, failures, hits, calls = _translate_distinct(translator, distinct, language_of, cache_path,
                                                                  batch_size, progress)
    out.loc[todo, "translated_query"] = sources[todo].map(lambda s: translations.get(s, ""))
    write_records(out, output_path, columns=("translated_query",))

    failed_rows = int(sources[todo].isin(failures).sum())
    summary = {
        "input": str(input_path), "output": str(output_path), "task": records.attrs["task"],
        "model_id": translator.model_id, "cache": None if isinstance(translator, ColumnTranslator) else str(cache_path),
        "rows": len(out), "already_translated": int(kept.sum()), "english": int(english.sum()),
        "looks_english": int(looks.sum()), "empty_query": int((~kept & sources.map(is_blank)).sum()),
        "to_translate": int(todo.sum()), "distinct_texts": len(distinct),
        "cache_hits": hits, "translated": len(translations) - hits, "model_calls": calls,
        "failed_texts": len(failures), "failed_rows": failed_rows,
        "untranslated_rows": int(out["translated_query"].map(is_blank).sum()),
        "seconds": round(time.monotonic() - start, 2),
    }
    if failures:
        examples = "; ".join(f"{text!r}: {why}" for text, why in list(failures.items())[:3])
        log.warning("%d distinct texts (%d rows) could not be translated and were left empty, e.g. %s",
                    len(failures), failed_rows, examples)
    log.info("wrote %s: %s", output_path, summary)
    return summary


def _translate_distinct(translator, distinct, language_of, cache_path, batch_size, progress):
    """Cache lookups, then the misses in batches, each committed to the cache as it completes."""
    calls = 0

    def call(texts, languages):
        nonlocal calls
        calls += 1
        return translator.translate(texts, languages)

    with TranslationCache(cache_path) as cache:
        translations = cache.get_many(translator.model_id, distinct)
        hits = len(translations)
        queue = [s for s in distinct if s not in translations]
        failures = {}
        if queue and hasattr(translator, "load"):
            translator.load()  # a model that cannot load is one error here, not a failure per text
        log.info("%d distinct texts: %d cached, %d to translate with %s", len(distinct), hits, len(queue),
                 translator.model_id)
        with tqdm(total=len(distinct), initial=hits, unit="text", desc="translating",
                  disable=not progress or not queue) as bar:
            try:
                for begin in range(0, len(queue), batch_size):
                    batch = queue[begin:begin + batch_size]
                    done, failed = _translate_batch(call, batch, [language_of[s] for s in batch])
                    cache.put_many(translator.model_id, done)
                    translations.update(done)
                    failures.update(failed)
                    bar.update(len(batch))
            except KeyboardInterrupt:
                log.warning("interrupted after %d of %d texts; they are in %s, run again to resume",
                            len(translations), len(distinct), cache.path)
                raise
    return translations, failures, hits, calls


def _translate_batch(call, texts: list[str], languages: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(translations, failures as text -> reason). A batch that raises is retried in halves down to single texts."""
    try:
        result = call(texts, languages)
        if len(result) != len(texts):
            raise ValueError(f"{len(result)} translations for {len(texts)} texts")
    except MtlError:  # the user's to fix (a model that does not load): one error, not a failure per text
        raise
    # Exception, not BaseException: KeyboardInterrupt and SystemExit must stop the run (the cache keeps the batches).
    except Exception as err:
        if len(texts) == 1:
            log.debug("translating %r failed: %s", texts[0], err)
            return {}, {texts[0]: f"{type(err).__name__}: {err}"}
        log.debug("a batch of %d failed (%s); retrying in halves", len(texts), err)
        half = len(texts) // 2
        done_a, failed_a = _translate_batch(call, texts[:half], languages[:half])
        done_b, failed_b = _translate_batch(call, texts[half:], languages[half:])
        return {**done_a, **done_b}, {**failed_a, **failed_b}
    done = {s: t.strip() for s, t in zip(texts, result) if isinstance(t, str) and t.strip()}
    return done, {s: "empty translation" for s in texts if s not in done}


def _majority_language(sources: pd.Series, languages: pd.Series) -> dict[str, str]:
    """Distinct source text -> the language most of its rows carry (ties: alphabetical, so runs agree)."""
    counts = pd.DataFrame({"source": sources.values, "language": languages.values})
    counts = counts.groupby(["source", "language"]).size().reset_index(name="n")
    counts = counts.sort_values(["n", "language"], ascending=[False, True], kind="stable").drop_duplicates("source")
    return dict(zip(counts["source"], counts["language"]))
