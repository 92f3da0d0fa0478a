import hashlib

import pandas as pd
import pytest
from transformers import AutoTokenizer

from mtl.data import pairs as pairs_module
from mtl.data.pairs import PairTokenizer, build_pairs, query_text, target_text, tokenize_pairs
from mtl.errors import ConfigError


@pytest.fixture(scope="module")
def tokenizer(tiny_backbone):
    return AutoTokenizer.from_pretrained(str(tiny_backbone))


def test_query_reads_origin_dash_translation_when_augmenting():
    assert query_text("zapatos nike", "nike shoes", True) == "zapatos nike - nike shoes"
    assert query_text("zapatos nike", "nike shoes", False) == "zapatos nike"


def test_missing_or_identical_translation_leaves_the_query_alone():
    assert query_text("zapatos", "", True) == "zapatos"
    assert query_text("nike shoes", "nike shoes", True) == "nike shoes"


def test_qc_target_is_rendered_level_by_level():
    path = "food,grocery,flour, baking and cooking,decorations"
    assert target_text("qc", path, "levels") == "food > grocery > flour, baking and cooking > decorations"
    assert target_text("qc", path, "raw") == path
    assert target_text("qc", path, "leaf_first") == "decorations < flour, baking and cooking < grocery < food"
    with pytest.raises(ValueError, match="taxonomy.render='plain'"):
        target_text("qc", path, "plain")
    assert target_text("qi", "Nike Air, men", "levels") == "Nike Air, men"


def test_build_pairs_uses_the_task_target_column():
    records = pd.DataFrame({"origin_query": ["sartén"], "translated_query": ["frying pan"],
                            "item_title": ["Tefal pan 24cm"]})
    assert build_pairs(records, "qi", True, "levels").iloc[0].tolist() == ["sartén - frying pan", "Tefal pan 24cm"]


def test_decoder_pair_format_is_bos_query_newline_target_eos(tokenizer):
    encoder = PairTokenizer(tokenizer, "decoder", max_length=64)
    (ids,) = encoder.encode(["pan"], ["kitchen"])
    expected = ([tokenizer.bos_token_id] + tokenizer.encode("pan", add_special_tokens=False)
                + tokenizer.encode("\n", add_special_tokens=False)
                + tokenizer.encode("kitchen", add_special_tokens=False) + [tokenizer.eos_token_id])
    assert ids == expected
    assert tokenizer.padding_side == "right"


def test_truncation_keeps_max_length_and_cuts_the_target_first(tokenizer):
    encoder = PairTokenizer(tokenizer, "decoder", max_length=16)
    short_query = "pan"
    (ids,) = encoder.encode([short_query], ["kitchen cookware " * 20])
    assert len(ids) == 16
    query_ids = tokenizer.encode(short_query, add_special_tokens=False)
    assert ids[1:1 + len(query_ids)] == query_ids
    assert ids[-1] == tokenizer.eos_token_id


def test_a_long_query_cannot_take_the_whole_budget(tokenizer):
    encoder = PairTokenizer(tokenizer, "decoder", max_length=16)
    (ids,) = encoder.encode(["zapatos " * 30], ["kitchen cookware " * 30])
    sep = tokenizer.encode("\n", add_special_tokens=False)
    budget = 16 - 2 - len(sep)
    target_part = ids[1:-1][-(budget // 2):]
    assert len(ids) == 16
    assert target_part == tokenizer.encode("kitchen cookware " * 30, add_special_tokens=False)[: budget // 2]


def test_fingerprint_changes_with_max_length(tokenizer):
    assert PairTokenizer(tokenizer, "decoder", 32).fingerprint() != PairTokenizer(tokenizer, "decoder", 64).fingerprint()


def test_tokenized_pairs_are_cached_and_reused(tokenizer, tmp_path, monkeypatch):
    encoder = PairTokenizer(tokenizer, "decoder", 32)
    frame = pd.DataFrame({"text_a": ["pan", "обувь"], "text_b": ["kitchen", "shoes"]})
    first = tokenize_pairs(frame, encoder, tmp_path)
    assert len(list((tmp_path / "tokenized").iterdir())) == 1
    monkeypatch.setattr(encoder, "encode", lambda *a: pytest.fail("cache miss: tokenized again"))
    assert tokenize_pairs(frame, encoder, tmp_path) == first


def test_cache_key_depends_on_the_text(tokenizer, tmp_path):
    encoder = PairTokenizer(tokenizer, "decoder", 32)
    tokenize_pairs(pd.DataFrame({"text_a": ["pan"], "text_b": ["kitchen"]}), encoder, tmp_path)
    tokenize_pairs(pd.DataFrame({"text_a": ["pan"], "text_b": ["garden"]}), encoder, tmp_path)
    assert len(list((tmp_path / "tokenized").iterdir())) == 2


def test_bumping_the_format_version_retokenizes(tokenizer, tmp_path, monkeypatch):
    encoder = PairTokenizer(tokenizer, "decoder", 32)
    frame = pd.DataFrame({"text_a": ["pan"], "text_b": ["kitchen"]})
    tokenize_pairs(frame, encoder, tmp_path)
    monkeypatch.setattr(pairs_module, "FORMAT_VERSION", pairs_module.FORMAT_VERSION + "-next")
    tokenize_pairs(frame, encoder, tmp_path)
    assert len(list((tmp_path / "tokenized").iterdir())) == 2


def test_the_prompt_template_wraps_both_sides_in_a_question_that_ends_the_row(tokenizer):
    encoder = PairTokenizer(tokenizer, "decoder", max_length=96, template="prompt")
    (ids,) = encoder.encode(["pan"], ["kitchen"])
    piece = [tokenizer.encode(text, add_special_tokens=False) for text in pairs_module.PROMPT]
    assert all(piece)
    expected = ([tokenizer.bos_token_id] + piece[0] + tokenizer.encode("pan", add_special_tokens=False) + piece[1]
                + tokenizer.encode("kitchen", add_special_tokens=False) + piece[2])
    assert ids == expected
    assert ids[-1] != tokenizer.eos_token_id


def test_the_prompt_template_truncates_within_max_length_and_has_its_own_fingerprint(tokenizer):
    plain, prompt = (PairTokenizer(tokenizer, "decoder", 96, template=t) for t in ("plain", "prompt"))
    (ids,) = prompt.encode(["zapatos " * 30], ["kitchen cookware " * 30])
    assert len(ids) == 96 and ids[-len(prompt.suffix):] == prompt.suffix
    assert plain.fingerprint() != prompt.fingerprint()
    probe = tokenizer.encode(pairs_module._PROBE, add_special_tokens=False)
    before_templates = [pairs_module.FORMAT_VERSION, "decoder", "96", type(tokenizer).__name__, str(len(tokenizer)),
                        str(probe), str((tokenizer.bos_token_id, tokenizer.eos_token_id, plain.pad_id))]
    assert plain.fingerprint() == hashlib.sha256("|".join(before_templates).encode()).hexdigest()[:16]
    fixed = len(prompt.prefix) + len(prompt.sep) + len(prompt.suffix)
    with pytest.raises(ConfigError, match=f"data.max_length={fixed} leaves no room"):
        PairTokenizer(tokenizer, "decoder", fixed, template="prompt")


def test_the_prompt_template_is_refused_for_an_encoder(tokenizer):
    with pytest.raises(ConfigError, match="data.template=prompt"):
        PairTokenizer(tokenizer, "encoder", 32, template="prompt")


@pytest.mark.parametrize("render", ["raw", "levels", "leaf_first"])
def test_the_exported_preprocess_renders_a_category_path_as_mtl(render, monkeypatch):
    from mtl.serving import preprocess

    settings = {"task": "qc", "render": render, "clean": True, "lowercase": True}
    monkeypatch.setattr(preprocess, "settings", lambda: settings)
    for path in ("Food,Grocery,flour, baking and cooking,", "  a,b , c", "one level"):
        assert preprocess.target_text(path) == target_text("qc", " ".join(path.split()).lower(), render)
