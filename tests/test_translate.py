"""mtl.translate: the pipeline with a counting fake backend (dedup, cache, resume, failures, English passthrough), the
family-specific generation arguments with light fake tokenizers, and the real code paths end to end on tiny random
models built here: NLLB-200 (M2M100 + NllbTokenizer), MADLAD-style T5 and the Gemma-3 LLM from conftest."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import write_jsonl
from mtl.cli import main
from mtl.data.pairs import build_pairs
from mtl.data.records import read_records
from mtl.errors import ConfigError, DataError
from mtl.translate import looks_english, translate_file
from mtl.translate.backends import (BACKENDS, LLM_BASE_PREFIX, ColumnTranslator, LLMTranslator, Seq2SeqTranslator,
                                    detect_family, plan_generation)
from mtl.translate.cache import TranslationCache

ROWS = [
    {"id": 10, "language": "es", "origin_query": "zapatos  rojos", "item_title": "Red Shoes 42", "label": 1},
    {"id": 11, "language": "en", "origin_query": "frying pan", "item_title": "Tefal Pan 28cm", "label": 1},
    {"id": 12, "language": "ru", "origin_query": "обувь", "item_title": "Nike Air", "label": 0},
    {"id": 13, "language": "es", "origin_query": "zapatos rojos", "item_title": "Blue Pan", "label": 0},
    {"id": 14, "language": "fr", "origin_query": "farine", "item_title": "Flour 1kg", "label": 1,
     "translated_query": "flour"},
    {"id": 15, "language": "es", "origin_query": "nike running shoes", "item_title": "Nike Pegasus", "label": 1},
    {"id": 16, "language": "ja", "origin_query": "フライパン", "item_title": "Frying Pan", "label": 1},
    {"id": 17, "language": "fr", "origin_query": "chaussures", "item_title": "Shoes", "label": 1,
     "translated_query": ""},
    {"id": 18, "language": "ru", "origin_query": "сковорода", "item_title": "Pan", "label": 1},
    {"id": 19, "language": "es", "origin_query": "harina de trigo", "item_title": "Wheat Flour", "label": 0},
]
TO_TRANSLATE = {"zapatos rojos", "обувь", "フライパン", "chaussures", "сковорода", "harina de trigo"}


class FakeTranslator:
    """Deterministic 'translation' that records every call; can fail on chosen texts or interrupt the run."""

    def __init__(self, model_id="fake", fail_on=(), empty_on=(), interrupt_after=None):
        self.model_id, self.interrupt_after = model_id, interrupt_after
        self.fail_on, self.empty_on = set(fail_on), set(empty_on)
        self.calls: list[list[str]] = []

    def translate(self, texts, source_languages):
        self.calls.append(list(texts))
        if self.interrupt_after is not None and len(self.calls) > self.interrupt_after:
            raise KeyboardInterrupt
        if self.fail_on & set(texts):
            raise RuntimeError("backend failure")
        return ["" if t in self.empty_on else f"EN[{lang}] {t}" for t, lang in zip(texts, source_languages)]

    def translated(self) -> list[str]:
        return [t for call in self.calls for t in call]


@pytest.fixture
def records_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "train_QI.jsonl", ROWS)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run(records_file, out_name, translator, cache, **kwargs) -> dict:
    return translate_file(records_file, records_file.parent / out_name, translator=translator, cache_path=cache,
                          progress=False, **kwargs)


def test_dedup_translate_fan_out_and_passthrough(records_file, tmp_path):
    fake = FakeTranslator()
    summary = run(records_file, "out.jsonl", fake, tmp_path / "c.sqlite", batch_size=4)

    assert sorted(fake.translated()) == sorted(TO_TRANSLATE)  # each distinct text once, whitespace collapsed
    assert [len(c) for c in fake.calls] == [4, 2]
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == [r["id"] for r in ROWS]
    by_id = {r["id"]: r["translated_query"] for r in out}
    assert by_id == {10: "EN[es] zapatos rojos", 11: "frying pan", 12: "EN[ru] обувь", 13: "EN[es] zapatos rojos",
                     14: "flour", 15: "nike running shoes", 16: "EN[ja] フライパン", 17: "EN[fr] chaussures",
                     18: "EN[ru] сковорода", 19: "EN[es] harina de trigo"}
    for row, written in zip(ROWS, out):
        assert {k: v for k, v in written.items() if k != "translated_query"} == \
            {k: v for k, v in row.items() if k != "translated_query"}
    assert {k: summary[k] for k in ("rows", "already_translated", "english", "looks_english", "to_translate",
                                    "distinct_texts", "cache_hits", "translated", "model_calls", "failed_texts",
                                    "untranslated_rows")} == {
        "rows": 10, "already_translated": 1, "english": 1, "looks_english": 1, "to_translate": 7,
        "distinct_texts": 6, "cache_hits": 0, "translated": 6, "model_calls": 2, "failed_texts": 0,
        "untranslated_rows": 0}


def test_pair_text_built_from_the_output(records_file, tmp_path):
    run(records_file, "out.jsonl", FakeTranslator(), ":memory:")
    records, _ = read_records(tmp_path / "out.jsonl")
    pairs = build_pairs(records, "qi", use_translation=True, render="plain")
    by_id = dict(zip(records["id"], pairs["text_a"]))
    assert by_id[10] == "zapatos  rojos - EN[es] zapatos rojos"
    assert by_id[11] == "frying pan"  # its own translation: the pair text repeats nothing
    assert by_id[15] == "nike running shoes"
    assert by_id[14] == "farine - flour"
    off = build_pairs(records, "qi", use_translation=False, render="plain")
    assert list(off["text_a"]) == list(records["origin_query"])


def test_cache_hits_skip_the_model_across_runs_and_files(records_file, tmp_path):
    cache = tmp_path / "cache" / "t.sqlite"
    first = run(records_file, "a.jsonl", FakeTranslator(), cache)
    again = FakeTranslator()
    second = run(records_file, "b.jsonl", again, cache)
    assert again.calls == [] and second["model_calls"] == 0 and second["cache_hits"] == 6
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()

    other = write_jsonl(tmp_path / "dev_QI.jsonl", [
        {"id": 1, "language": "ru", "origin_query": "обувь", "item_title": "x"},
        {"id": 2, "language": "de", "origin_query": "Schuhe", "item_title": "y"},
    ])
    third_fake = FakeTranslator()
    third = run(other, "c.jsonl", third_fake, cache)
    assert third_fake.calls == [["Schuhe"]] and third["cache_hits"] == 1
    another_model = FakeTranslator(model_id="other")
    run(other, "d.jsonl", another_model, cache)
    assert another_model.translated() == ["Schuhe", "обувь"]  # sorted by language: de before ru
    assert first["cache"] == str(cache)
    with TranslationCache(cache) as c:
        assert c.count("fake") == 7 and c.count("other") == 2
        assert c.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_resume_after_interruption_translates_only_the_rest(records_file, tmp_path):
    cache = tmp_path / "c.sqlite"
    interrupted = FakeTranslator(interrupt_after=2)
    with pytest.raises(KeyboardInterrupt):
        run(records_file, "out.jsonl", interrupted, cache, batch_size=2)
    assert not (tmp_path / "out.jsonl").exists()
    done_before = {t for call in interrupted.calls[:2] for t in call}
    assert len(done_before) == 4
    with sqlite3.connect(cache) as conn:
        assert {row[0] for row in conn.execute("SELECT source FROM translations")} == done_before

    resumed = FakeTranslator()
    summary = run(records_file, "out.jsonl", resumed, cache, batch_size=2)
    assert set(resumed.translated()) == TO_TRANSLATE - done_before and summary["model_calls"] == 1
    assert summary["cache_hits"] == 4

    run(records_file, "uninterrupted.jsonl", FakeTranslator(), tmp_path / "fresh.sqlite", batch_size=2)
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "uninterrupted.jsonl").read_bytes()


def test_failing_text_is_isolated_counted_and_retried_next_run(records_file, tmp_path):
    cache = tmp_path / "c.sqlite"
    fake = FakeTranslator(fail_on={"обувь"}, empty_on={"сковорода"})
    summary = run(records_file, "out.jsonl", fake, cache, batch_size=8)
    assert len(fake.calls[0]) == 6 and min(len(c) for c in fake.calls) == 1  # split in halves down to the culprit
    assert summary["failed_texts"] == 2 and summary["failed_rows"] == 2 and summary["untranslated_rows"] == 2
    by_id = {r["id"]: r["translated_query"] for r in read_jsonl(tmp_path / "out.jsonl")}
    assert by_id[12] == "" and by_id[18] == ""
    assert by_id[16] == "EN[ja] フライパン" and by_id[19] == "EN[es] harina de trigo"

    retry = FakeTranslator()
    run(records_file, "out.jsonl", retry, cache)
    assert sorted(retry.translated()) == ["обувь", "сковорода"]  # failures were not cached


def test_english_detection_can_be_switched_off(records_file, tmp_path):
    fake = FakeTranslator()
    summary = run(records_file, "out.jsonl", fake, ":memory:", detect_english=False)
    assert "nike running shoes" in fake.translated() and "frying pan" not in fake.translated()
    assert summary["looks_english"] == 0 and summary["english"] == 1


@pytest.mark.parametrize("query, expected", [
    ("nike running shoes", True), ("iPhone 15 case", True), ("women's t-shirt XL", False), ("black t-shirt 2xl", True),
    ("mini pillow", True), ("zapatillas nike", False), ("pan", False), ("nike", False), ("rock", False),
    ("café", False), ("обувь", False), ("", False), ("128gb", False), ("ray-ban sunglasses", True),
])
def test_looks_english(query, expected):
    assert looks_english(query) is expected


def test_refuses_to_overwrite_the_input_and_leaves_it_unchanged(records_file, tmp_path):
    before = records_file.read_bytes()
    with pytest.raises(ConfigError, match="input file"):
        translate_file(records_file, tmp_path / "." / records_file.name, translator=FakeTranslator())
    run(records_file, "out.csv", FakeTranslator(), ":memory:")
    assert records_file.read_bytes() == before
    csv_records, _ = read_records(tmp_path / "out.csv")
    assert csv_records.loc[csv_records["id"] == 12, "translated_query"].item() == "EN[ru] обувь"


def test_column_backend_reports_and_requires_the_column(records_file, tmp_path):
    summary = translate_file(records_file, tmp_path / "out.jsonl", "column", cache_path=tmp_path / "never.sqlite")
    assert summary["model_calls"] == 0 and summary["already_translated"] == 1
    assert summary["untranslated_rows"] == 7 and summary["cache"] is None
    assert not (tmp_path / "never.sqlite").exists()
    assert {r["id"]: r["translated_query"] for r in read_jsonl(tmp_path / "out.jsonl")}[11] == "frying pan"

    bare = write_jsonl(tmp_path / "bare.jsonl", [{k: v for k, v in r.items() if k != "translated_query"} for r in ROWS])
    with pytest.raises(DataError, match="translated_query"):
        translate_file(bare, tmp_path / "out2.jsonl", "column")
    with pytest.raises(ConfigError, match="--model"):
        translate_file(records_file, tmp_path / "out3.jsonl", "seq2seq")
    assert set(BACKENDS) == {"seq2seq", "llm", "column"} and BACKENDS["column"] is ColumnTranslator


class FakeNllbTokenizer:
    unk_token_id = 3
    codes = {"eng_Latn": 100, "spa_Latn": 101, "rus_Cyrl": 102, "jpn_Jpan": 103}

    def convert_tokens_to_ids(self, token):
        return self.codes.get(token, self.unk_token_id)

    def get_vocab(self):
        return dict(self.codes)


FakeNllbTokenizer.__name__ = "NllbTokenizer"


class FakeM2M100Tokenizer:
    def get_lang_id(self, lang):
        return {"en": 7, "es": 8, "ru": 9}[lang]

    def get_vocab(self):
        return {"__en__": 7}


class FakeT5Tokenizer:
    def __init__(self, madlad):
        self.vocab = {"<2en>": 5} if madlad else {"▁the": 5}

    def get_vocab(self):
        return self.vocab


def test_family_detection_from_config_and_tokenizer():
    from transformers import BartConfig, M2M100Config, MarianConfig, T5Config

    assert detect_family(M2M100Config(), FakeNllbTokenizer()) == "nllb"
    assert detect_family(M2M100Config(), FakeM2M100Tokenizer()) == "m2m100"
    assert detect_family(T5Config(), FakeT5Tokenizer(madlad=True)) == "madlad"
    assert detect_family(T5Config(), FakeT5Tokenizer(madlad=False)) == "generic"
    assert detect_family(MarianConfig(), FakeT5Tokenizer(madlad=False)) == "marian"
    assert detect_family(BartConfig(), FakeT5Tokenizer(madlad=False)) == "generic"


def test_generation_arguments_per_family():
    texts, languages = ["zapatos", "обувь", "harina", "靴"], ["es", "ru", "ES", "ja"]
    nllb = plan_generation("nllb", FakeNllbTokenizer(), texts, languages)
    assert [(g.src_lang, g.indices, g.inputs, g.generate_kwargs) for g in nllb] == [
        ("spa_Latn", [0, 2], ["zapatos", "harina"], {"forced_bos_token_id": 100}),
        ("rus_Cyrl", [1], ["обувь"], {"forced_bos_token_id": 100}),
        ("jpn_Jpan", [3], ["靴"], {"forced_bos_token_id": 100}),
    ]
    m2m = plan_generation("m2m100", FakeM2M100Tokenizer(), texts[:3], ["es", "ru", "es-MX"])
    assert [(g.src_lang, g.indices, g.generate_kwargs) for g in m2m] == [
        ("es", [0, 2], {"forced_bos_token_id": 7}), ("ru", [1], {"forced_bos_token_id": 7})]
    (madlad,) = plan_generation("madlad", FakeT5Tokenizer(madlad=True), texts, languages)
    assert madlad.inputs == ["<2en> zapatos", "<2en> обувь", "<2en> harina", "<2en> 靴"] and madlad.src_lang is None
    (marian,) = plan_generation("marian", None, texts, languages)
    assert marian.inputs == texts and marian.generate_kwargs == {} and marian.src_lang is None
    with pytest.raises(ValueError, match="NLLB-200 code"):
        plan_generation("nllb", FakeNllbTokenizer(), ["x"], ["xx"])
    with pytest.raises(ValueError, match="no language token"):
        plan_generation("nllb", FakeNllbTokenizer(), ["x"], ["fr"])  # fra_Latn missing from this vocabulary


def _metaspace_bpe(vocab_size: int, special: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = [r["origin_query"] + " " + r["item_title"] for r in ROWS] * 5 + ["red shoes flour pan the of"] * 5
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                                               show_progress=False))
    return tokenizer


@pytest.fixture(scope="module")
def tiny_nllb(tmp_path_factory) -> Path:
    """A 1+1-layer random M2M100 with a real NllbTokenizer (BPE trained here, five language codes)."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    folder = tmp_path_factory.mktemp("tiny-nllb")
    model = json.loads(_metaspace_bpe(300, ["<s>", "<pad>", "</s>", "<unk>"]).to_str())["model"]
    tokenizer = NllbTokenizer(vocab=model["vocab"], merges=[tuple(m) for m in model["merges"]],
                              extra_special_tokens=["eng_Latn", "spa_Latn", "rus_Cyrl", "fra_Latn", "jpn_Jpan"])
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = M2M100Config(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                          decoder_ffn_dim=64, max_position_embeddings=64, pad_token_id=1, bos_token_id=0,
                          eos_token_id=2, decoder_start_token_id=2)
    M2M100ForConditionalGeneration(config).save_pretrained(str(folder))
    return folder


def test_nllb_end_to_end_through_the_cli(tiny_nllb, records_file, tmp_path, capsys):
    out, cache = tmp_path / "out.jsonl", tmp_path / "c.sqlite"
    assert main(["-q", "translate", "--input", str(records_file), "--output", str(out), "--model", str(tiny_nllb),
                 "--cache", str(cache), "--batch-size", "4", "--max-new-tokens", "6", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "6 distinct texts: 0 came from the cache and 6 were translated" in printed and "0 texts failed" in printed

    written = read_jsonl(out)
    assert [r["id"] for r in written] == [r["id"] for r in ROWS]
    for row, result in zip(ROWS, written):
        assert {k: v for k, v in result.items() if k != "translated_query"} == \
            {k: v for k, v in row.items() if k != "translated_query"}
        if row.get("translated_query"):
            assert result["translated_query"] == row["translated_query"]
        elif row["language"] == "en" or row["id"] == 15:
            assert result["translated_query"] == row["origin_query"]
        else:
            assert result["translated_query"].strip() and result["translated_query"] != row["origin_query"]
    assert written[0]["translated_query"] == written[3]["translated_query"]  # one text, one translation

    assert main(["-q", "translate", "--input", str(records_file), "--output", str(tmp_path / "again.jsonl"),
                 "--model", str(tiny_nllb), "--cache", str(cache), "--batch-size", "4", "--max-new-tokens", "6",
                 "--device", "cpu"]) == 0
    assert "6 came from the cache and 0 were translated" in capsys.readouterr().out
    assert (tmp_path / "again.jsonl").read_bytes() == out.read_bytes()


def test_nllb_generates_one_source_language_at_a_time_with_english_forced(tiny_nllb):
    translator = Seq2SeqTranslator(tiny_nllb, max_new_tokens=4)
    assert translator.model is None  # nothing loads until a text needs the model
    translator.load()
    assert translator.family == "nllb" and translator.model_id.startswith(f"seq2seq:{tiny_nllb.name}@")
    seen, generate = [], translator.model.generate

    def spy(**kwargs):
        seen.append((kwargs["input_ids"][:, 0].tolist(), kwargs["forced_bos_token_id"]))
        return generate(**kwargs)

    translator.model.generate = spy
    result = translator.translate(["zapatos rojos", "обувь", "harina de trigo"], ["es", "ru", "es"])
    assert len(result) == 3 and all(isinstance(t, str) for t in result)
    ids = translator.tokenizer.convert_tokens_to_ids
    assert seen == [([ids("spa_Latn")] * 2, ids("eng_Latn")), ([ids("rus_Cyrl")], ids("eng_Latn"))]
    assert Seq2SeqTranslator(tiny_nllb, max_new_tokens=8).model_id != translator.model_id


def test_madlad_style_t5_reads_the_target_prefix(tmp_path):
    import torch
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_metaspace_bpe(200, ["<pad>", "</s>", "<unk>", "<2en>"]),
                                        pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    tokenizer.save_pretrained(str(tmp_path))
    torch.manual_seed(0)
    T5ForConditionalGeneration(T5Config(vocab_size=len(tokenizer), d_model=32, d_ff=64, d_kv=8, num_layers=1,
                                        num_heads=2, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
                               ).save_pretrained(str(tmp_path))
    translator = Seq2SeqTranslator(tmp_path, max_new_tokens=4)
    translator.load()
    assert translator.family == "madlad"
    translator.tokenizer = SpyTokenizer(translator.tokenizer)
    assert len(translator.translate(["zapatos", "обувь"], ["es", "ru"])) == 2
    assert translator.tokenizer.seen == ["<2en> zapatos", "<2en> обувь"]


class SpyTokenizer:
    """Records the strings a real tokenizer is asked to encode."""

    def __init__(self, inner):
        self.inner, self.seen = inner, []

    def __call__(self, texts, **kwargs):
        self.seen.extend(texts)
        return self.inner(texts, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_llm_backend_prompts_and_generates_with_tiny_gemma(tiny_backbone):
    translator = LLMTranslator(tiny_backbone, max_new_tokens=5)
    prompts = translator.prompts(["zapatos", "обувь"], ["es", "xx"])
    assert not translator.tokenizer.chat_template  # a base model: shown worked examples, not asked
    assert all(p.startswith(LLM_BASE_PREFIX) for p in prompts)
    assert prompts[0].endswith("\n\nSpanish: zapatos\nEnglish:") and prompts[1].endswith("\n\nQuery: обувь\nEnglish:")
    assert translator.tokenizer.padding_side == "left"

    batched = translator.translate(["zapatos rojos baratos", "обувь"], ["es", "ru"])
    single = [translator.translate([t], [lang])[0] for t, lang in (("zapatos rojos baratos", "es"), ("обувь", "ru"))]
    assert batched == single and all("\n" not in t for t in batched)  # left padding: batching changes nothing

    translator.tokenizer.chat_template = ("{% for m in messages %}<start_of_turn>user\n{{ m['content'] }}"
                                          "<end_of_turn>\n{% endfor %}<start_of_turn>model\n")
    (wrapped,) = translator.prompts(["zapatos"], ["es"])
    assert wrapped.startswith("<start_of_turn>user\nTranslate this Spanish")
    assert wrapped.endswith("Query: zapatos\nEnglish:<end_of_turn>\n<start_of_turn>model")


def test_the_llm_backend_takes_the_embedded_backbone_by_its_spec(tiny_backbone, monkeypatch):
    import mtl.backbone

    specs = []
    monkeypatch.setattr(mtl.backbone, "resolve", lambda spec: specs.append(spec) or tiny_backbone)
    assert LLMTranslator("embedded:gemma3-270m").path == tiny_backbone and specs == ["embedded:gemma3-270m"]
    with pytest.raises(ConfigError, match="not a local Hugging Face folder"):
        LLMTranslator("embedded:gemma3-1b")
    with pytest.raises(ConfigError, match="embedded:gemma3-270m: the embedded backbone is a decoder-only LM, not a "
                                          "seq2seq translation model: use --backend llm"):
        Seq2SeqTranslator("embedded:gemma3-270m")
    assert specs == ["embedded:gemma3-270m"]


def test_the_cached_few_shot_examples_change_no_reply(tmp_path):
    import torch

    from tests.conftest import build_tiny_backbone

    # a window longer than the prompts, as the embedded model's 512 is: the examples' cache is shared
    translator = LLMTranslator(build_tiny_backbone(tmp_path, sliding_window=512), max_new_tokens=6)
    translator.load()
    seen, generate = [], translator.model.generate
    translator.model.generate = lambda **kwargs: seen.append(kwargs) or generate(**kwargs)
    texts, languages = ["zapatos rojos baratos", "обувь", "x"], ["es", "ru", "de"]
    replies = translator.translate(texts, languages)
    assert "past_key_values" in seen[-1]
    assert replies == [translator.translate([t], [lang])[0] for t, lang in zip(texts, languages)]
    tokenizer = translator.tokenizer
    for text, language, reply in zip(texts, languages, replies):
        tail = translator.prompts([text], [language])[0][len(LLM_BASE_PREFIX):]
        ids = torch.tensor([tokenizer(LLM_BASE_PREFIX).input_ids + tokenizer(tail, add_special_tokens=False).input_ids])
        with torch.inference_mode():  # the same tokens, every one computed afresh
            out = generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id)
        alone = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        assert reply == next(iter(alone.strip().splitlines()), "").strip()


def test_llm_few_shot_generation_stops_at_the_first_line_only_for_a_base_model(tiny_backbone):
    translator = LLMTranslator(tiny_backbone, max_new_tokens=5)
    translator.load()
    seen = []
    generate = translator.model.generate
    translator.model.generate = lambda **kwargs: seen.append(kwargs) or generate(**kwargs)
    translator.translate(["zapatos"], ["es"])
    newline = translator.tokenizer.encode("\n", add_special_tokens=False)
    assert newline and set(newline) < set(seen[-1]["eos_token_id"]) and translator.tokenizer.eos_token_id in \
        seen[-1]["eos_token_id"]
    assert "past_key_values" not in seen[-1]  # the prompt outgrows the tiny model's 32-token window: no shared cache
    assert translator._prefix_cache is None  # nor is one computed
    translator.tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    translator.translate(["zapatos"], ["es"])
    assert "eos_token_id" not in seen[-1]


def test_llm_reply_keeps_the_first_line_only(tiny_backbone):
    import torch

    translator = LLMTranslator(tiny_backbone, max_new_tokens=6)
    translator.load()
    reply = translator.tokenizer.encode("\n red shoes\nmore text", add_special_tokens=False)

    def fake_generate(input_ids, **_):
        return torch.cat([input_ids, torch.tensor([reply] * input_ids.shape[0])], dim=1)

    translator.model.generate = fake_generate
    assert translator.translate(["zapatos rojos", "x"], ["es", "es"]) == ["red shoes", "red shoes"]


@pytest.mark.parametrize("output, message", [
    ("{tmp}", "is a folder; give the output file's name"),
    ("{tmp}/train_QI.jsonl/out.jsonl", "train_QI.jsonl is a file, so no folder can be made there"),
    ("{tmp}/loop/out.jsonl", "cannot resolve the path: Symlink loop"),
], ids=["folder", "under a file", "symlink loop"])
def test_the_output_path_is_checked_like_every_command_s_before_any_work(records_file, tmp_path, output, message):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    fake = FakeTranslator()
    with pytest.raises(ConfigError, match=message):
        run(records_file, output.format(tmp=tmp_path), fake, ":memory:")
    assert fake.calls == []


def test_an_output_folder_without_write_permission_is_refused(records_file, tmp_path, monkeypatch):
    real_access = __import__("os").access
    monkeypatch.setattr("mtl.io.os.access",
                        lambda path, mode: False if Path(path) == tmp_path else real_access(path, mode))
    with pytest.raises(ConfigError, match=f"no permission to write in {tmp_path}"):
        run(records_file, "out.jsonl", FakeTranslator(), ":memory:")


@pytest.mark.parametrize("flag", ["--num-beams", "--max-new-tokens", "--batch-size"])
def test_generation_settings_below_1_are_refused(records_file, tmp_path, flag, caplog):
    argv = ["translate", "--input", str(records_file), "--output", str(tmp_path / "out.jsonl"), "--backend", "column",
            flag, "0"]
    assert main(argv) == 2
    assert f"{flag} must be at least 1, got 0" in caplog.text


def test_the_column_check_reads_the_records_through_the_record_reader(tmp_path):
    """A CR alone is JSON whitespace: the records and the column check must read the file the same way."""
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r).replace(', "label"', ',\r"label"') + "\n" for r in ROWS), encoding="utf-8")
    summary = translate_file(path, tmp_path / "out.jsonl", "column")
    assert summary["rows"] == len(ROWS) and summary["already_translated"] == 1


class CountingSeq2Seq(Seq2SeqTranslator):
    loads = 0

    def load(self):
        CountingSeq2Seq.loads += 1
        super().load()


def test_a_model_that_cannot_load_is_one_error_before_any_output(records_file, tmp_path):
    model = tmp_path / "broken"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ConfigError, match=r"translation model .*broken: cannot be loaded: "):
        run(records_file, "out.jsonl", CountingSeq2Seq(model), ":memory:")
    assert CountingSeq2Seq.loads == 1
    assert not (tmp_path / "out.jsonl").exists()


def test_a_device_that_does_not_exist_is_refused_before_reading(records_file, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="--device 'bogus': not a device"):
        translate_file(tmp_path / "missing.jsonl", tmp_path / "out.jsonl", "seq2seq", model, device="bogus")


@pytest.mark.parametrize("content, message", [
    (b"not a database" * 100, "file is not a database"),
    (None, "unable to open database file"),
])
def test_a_cache_that_is_not_a_translation_cache_is_refused(records_file, tmp_path, content, message):
    cache = tmp_path / "cache.sqlite"
    if content is None:
        cache.mkdir()
    else:
        cache.write_bytes(content)
    with pytest.raises(ConfigError, match=f"translation cache {cache}: cannot use it as a cache: {message}"):
        run(records_file, "out.jsonl", FakeTranslator(), cache)
    assert not (tmp_path / "out.jsonl").exists()


def test_another_sqlite_database_as_cache_is_refused_and_left_as_it_was(records_file, tmp_path):
    import sqlite3

    cache = tmp_path / "other.sqlite"
    with sqlite3.connect(cache) as conn:
        conn.execute("CREATE TABLE foo (x)")
    before = cache.read_bytes()
    with pytest.raises(ConfigError, match="cannot use it as a cache: a sqlite database without a translations table "
                                          r"\(it has foo\)"):
        run(records_file, "out.jsonl", FakeTranslator(), cache)
    assert cache.read_bytes() == before and not (tmp_path / "other.sqlite-wal").exists()


def test_a_query_of_invisible_characters_is_empty_and_not_translated(tmp_path):
    rows = ROWS + [{"id": 20, "language": "es", "origin_query": "\u200b\u200d", "item_title": "x", "label": 0}]
    fake = FakeTranslator()
    summary = run(write_jsonl(tmp_path / "in.jsonl", rows), "out.jsonl", fake, ":memory:")
    assert "\u200b\u200d" not in fake.translated()
    assert summary["empty_query"] == 1
