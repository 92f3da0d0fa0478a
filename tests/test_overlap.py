import numpy as np
import pytest

from mtl.overlap import (BINNED_FEATURES, FEATURE_SETS, OVERLAP_FEATURES, feature_dim, feature_set, overlap_features,
                         pair_overlap)


def features(query, title):
    return dict(zip(OVERLAP_FEATURES, pair_overlap(query, title)))


def test_exact_words_and_stems_are_counted_apart():
    f = features("Cordless Drill bits", "DEWALT 20V cordless drills, kit")
    assert f["word_share"] == pytest.approx(1 / 3)  # "cordless"; "drill" is not "drills", "bits" absent
    assert f["stem_share"] == pytest.approx(2 / 3)  # "drill" begins "drills"
    assert f["last_word"] == 0.0
    assert f["query_words"] == pytest.approx(np.log2(4) / 4)


def test_a_short_query_word_matches_the_start_of_a_title_word():
    assert features("tv stand", "tvs and stands")["stem_share"] == 1.0
    assert features("tv", "smart tv")["last_word"] == 1.0
    assert features("v", "tv")["stem_share"] == 0.0


def test_trigram_share_sees_words_run_together():
    f = features("showerhead", "shower head chrome")
    assert f["word_share"] == 0.0
    assert 0.5 < f["trigram_share"] < 1.0
    assert features("abc", "xyz abc")["trigram_share"] == 1.0


def test_a_query_without_words_reads_zeros_and_the_batch_matches_pair_by_pair():
    assert pair_overlap("  ¿? ", "anything") == [0.0] * len(OVERLAP_FEATURES)
    queries, titles = ["pan", "мука пшеничная", ""], ["frying pan", "Мука 1 кг", "x"]
    out = overlap_features(queries, titles)
    assert out.shape == (3, len(OVERLAP_FEATURES)) and out.dtype == np.float32
    np.testing.assert_allclose(out, [pair_overlap(q, t) for q, t in zip(queries, titles)], rtol=1e-6)
    assert out[1, 0] == 0.5  # non-Latin words, lower-cased


def test_qi_task_data_reads_the_original_query_against_the_title_with_translation_on(tiny_backbone, tmp_path):
    import pandas as pd

    from mtl.config import load_config
    from mtl.data.tasks import make_task_data
    from mtl.model import build_tokenizer

    cfg = load_config(None, [f"model.backbone={tiny_backbone}", f"data.cache_dir={tmp_path}",
                             "model.qi_features=overlap", "augment.translation=true"])
    records = pd.DataFrame({"id": [0, 1], "label": [1, 0], "language": ["es", "en"],
                            "origin_query": ["taladro inalambrico", "lamp"],
                            "translated_query": ["cordless drill", "lamp"],
                            "item_title": ["Cordless Drill taladro", "garden hose"]})
    pairs, _ = build_tokenizer(cfg)
    data = make_task_data(records, "qi", cfg, pairs)
    np.testing.assert_array_equal(data.features, overlap_features(records["origin_query"], records["item_title"]))
    assert data.features[0, 0] == 0.5  # "taladro" only: the translation's "cordless drill" is not read
    cfg.model.qi_features = "none"
    assert make_task_data(records, "qi", cfg, pairs).features is None


def test_binned_columns_put_each_share_in_one_bin_exactly_at_the_edges():
    binned = dict(zip(OVERLAP_FEATURES + BINNED_FEATURES, pair_overlap("Cordless Drill bits", "DEWALT cordless drills",
                                                                       binned=True)))
    assert len(binned) == len(OVERLAP_FEATURES) + len(BINNED_FEATURES) == feature_dim("overlap_binned")
    assert binned["word_share<=1/3"] == 1.0 and binned["word_share=0"] == 0.0  # 1/3 exactly: the lower bin
    assert binned["stem_share<3/4"] == 1.0  # 2/3
    for share in ("word_share", "stem_share", "trigram_share"):
        assert sum(binned[k] for k in binned if k.startswith(share + "<") or k.startswith(share + "=")) == 1.0
    assert binned["query_words=3"] == 1.0 and binned["stem_share*query_words=3"] == pytest.approx(2 / 3)
    assert binned["stem_share*last_word"] == 0.0
    long = dict(zip(OVERLAP_FEATURES + BINNED_FEATURES, pair_overlap("a b c d e f g", "a b c d e f g", binned=True)))
    assert long["query_words>=5"] == 1.0 and long["word_share=1"] == 1.0 and long["stem_share*last_word"] == 1.0
    assert pair_overlap("", "x", binned=True) == [0.0] * feature_dim("overlap_binned")
    np.testing.assert_array_equal(overlap_features(["cordless drill bits"], ["dewalt cordless drills"], binned=True)[0,
                                  :len(OVERLAP_FEATURES)], overlap_features(["cordless drill bits"],
                                                                            ["dewalt cordless drills"])[0])
    assert {feature_set(len(names)) for names in FEATURE_SETS.values()} == set(FEATURE_SETS)
    with pytest.raises(ValueError, match="no word-overlap feature set has 3 columns"):
        feature_set(3)
