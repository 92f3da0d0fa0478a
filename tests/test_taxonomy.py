"""Category path parsing, the category tree, and leakage-free prefix prior features."""

import json
import math

import networkx as nx
import numpy as np
import pytest

from mtl.taxonomy import ROOT, PathMatch, PrefixPriors, Taxonomy, join_levels, parse_path, render_levels

FOUR_LEVELS = "food,grocery,flour, baking and cooking,decorations"


@pytest.fixture
def tax():
    return Taxonomy.from_paths([
        "home & garden,kitchen,cookware",
        "home & garden,kitchen,cutlery",
        "home & garden,bath",
        " home & garden,kitchen,cookware ",
        FOUR_LEVELS,
    ])


def test_level_name_with_comma_space_stays_one_level():
    assert parse_path(FOUR_LEVELS) == ["food", "grocery", "flour, baking and cooking", "decorations"]


def test_path_without_comma_space():
    assert parse_path("home & garden,kitchen,cookware") == ["home & garden", "kitchen", "cookware"]


def test_stray_commas_and_whitespace_are_dropped():
    assert parse_path(" ,food,,grocery , ") == ["food", "grocery"]
    assert parse_path("food,grocery,") == ["food", "grocery"]
    assert parse_path("food,grocery, ") == ["food", "grocery"]


@pytest.mark.parametrize("blank", ["", "   ", ",,", " , "])
def test_blank_path_raises(blank):
    with pytest.raises(ValueError, match="empty category path"):
        parse_path(blank)


def test_join_levels_is_canonical_id():
    assert join_levels(parse_path(" food ,grocery ")) == "food,grocery"


def test_comma_space_inside_level_is_not_a_separator():
    assert parse_path("food , grocery") == ["food , grocery"]


def test_subtree_roots_are_the_ancestors_at_a_depth_and_shallower_nodes_themselves():
    tree = Taxonomy.from_paths([FOUR_LEVELS, "food,drinks", "toys"])
    roots = tree.subtree_roots(3)
    assert roots[FOUR_LEVELS] == roots["food,grocery,flour, baking and cooking"] == \
        "food,grocery,flour, baking and cooking"
    assert (roots["food,grocery"], roots["food"], roots["toys"], roots[ROOT]) == ("food,grocery", "food", "toys", ROOT)
    assert tree.subtree_roots(1)[FOUR_LEVELS] == "food"
    assert set(tree.subtree_roots(1)) == set(tree.graph)
    with pytest.raises(ValueError):
        tree.subtree_roots(0)


def test_render_levels():
    assert render_levels(FOUR_LEVELS) == "food > grocery > flour, baking and cooking > decorations"
    assert render_levels("a,b", sep="/") == "a/b"


def test_tree_nodes_and_attributes(tax):
    assert len(tax) == 9
    assert tax.graph.nodes[ROOT] == {"name": "", "depth": 0, "count": 5}
    assert tax.graph.nodes["home & garden"] == {"name": "home & garden", "depth": 1, "count": 4}
    assert tax.graph.nodes["home & garden,kitchen,cookware"]["count"] == 2
    assert tax.graph.nodes["food,grocery,flour, baking and cooking"]["name"] == "flour, baking and cooking"
    assert tax.graph.nodes["food,grocery,flour, baking and cooking,decorations"]["depth"] == 4
    assert set(tax.graph.successors(ROOT)) == {"home & garden", "food"}


def test_contains_canonicalises(tax):
    assert " home & garden ,kitchen" in tax
    assert "home & garden,garage" not in tax
    assert "" not in tax


def test_depth_works_for_unseen_paths(tax):
    assert tax.depth(FOUR_LEVELS) == 4
    assert tax.depth("never,seen") == 2


def test_ancestors(tax):
    assert tax.ancestors(FOUR_LEVELS) == ["food", "food,grocery", "food,grocery,flour, baking and cooking"]
    assert tax.ancestors("food") == []


def test_children_and_siblings(tax):
    assert tax.children("home & garden") == ["home & garden,bath", "home & garden,kitchen"]
    assert tax.children("home & garden,bath") == []
    assert tax.children(ROOT) == ["food", "home & garden"]
    assert tax.siblings("home & garden,kitchen,cutlery") == ["home & garden,kitchen,cookware"]
    assert tax.siblings("food") == ["home & garden"]


def test_leaf_internal_and_leaves(tax):
    assert tax.is_leaf("home & garden,bath")
    assert not tax.is_internal("home & garden,bath")
    assert tax.is_internal("home & garden,kitchen")
    assert tax.leaves() == [
        FOUR_LEVELS,
        "home & garden,bath",
        "home & garden,kitchen,cookware",
        "home & garden,kitchen,cutlery",
    ]


@pytest.mark.parametrize("method", ["ancestors", "children", "siblings", "is_leaf"])
def test_unknown_path_error_names_path(tax, method):
    with pytest.raises(KeyError, match="home & garden,garage"):
        getattr(tax, method)("home & garden,garage")


def test_lookup_complete_partial_none(tax):
    assert tax.lookup(" home & garden,kitchen ") == PathMatch("complete", 2, "home & garden,kitchen")
    assert tax.lookup("home & garden,kitchen,pans,steel") == PathMatch("partial", 2, "home & garden,kitchen")
    assert tax.lookup("toys,puzzles") == PathMatch("none", 0, ROOT)


def test_save_load_round_trip(tax, tmp_path):
    file = tmp_path / "tax.json"
    tax.save(file)
    loaded = Taxonomy.load(file)
    assert dict(loaded.graph.nodes(data=True)) == dict(tax.graph.nodes(data=True))
    assert set(loaded.graph.edges) == set(tax.graph.edges)
    assert isinstance(loaded.graph, nx.DiGraph) and loaded.graph.is_directed()
    assert loaded.lookup("food,grocery,rice").depth == 2


def test_saved_file_is_json_and_no_temp_left(tax, tmp_path):
    file = tmp_path / "tax.json"
    tax.save(file)
    data = json.loads(file.read_text(encoding="utf-8"))
    assert len(data["nodes"]) == 10 and len(data["edges"]) == 9
    assert [p.name for p in tmp_path.iterdir()] == ["tax.json"]


# global rate 2/4 = 0.5; counts a=[3,2], a,x=[2,1], a,y=[1,1], b=[1,0]
PATHS = ["a,x", "a,x", "a,y", "b"]
LABELS = [1, 0, 1, 0]


@pytest.fixture
def priors():
    return PrefixPriors.fit(PATHS, LABELS, depth=2, strength=2.0)


def test_priors_fit_counts(priors):
    assert priors.global_rate == 0.5
    assert priors.counts == {"a": [3, 2], "a,x": [2, 1], "a,y": [1, 1], "b": [1, 0]}


def test_priors_hand_computed_features(priors):
    got = priors.features(["a,y"])
    # rate(a) = (2 + 2*0.5) / (3 + 2) = 0.6; rate(a,y) = (1 + 1) / (1 + 2) = 2/3
    expected = [0.6 - 0.5, 2 / 3 - 0.5, math.log1p(3) / 10, math.log1p(1) / 10, 1.0]
    np.testing.assert_allclose(got[0], expected, rtol=1e-6)


def test_priors_shape_and_dtype(priors):
    got = priors.features(PATHS)
    assert priors.n_features == 5
    assert got.shape == (4, 5) and got.dtype == np.float32


def test_out_of_fold_features_come_from_the_other_queries_only():
    # two queries; each row's features are the priors of the other query's rows alone
    paths, labels, queries = ["a,x", "a,x", "a,x"], [1, 1, 0], [0, 0, 1]
    got = PrefixPriors.fit(paths, labels, depth=2, strength=0.0).out_of_fold_features(paths, labels, queries)
    # rows of query 0 see query 1 only (a: 0/1, global 0/1), query 1 sees query 0 (a: 2/2, global 2/2)
    np.testing.assert_allclose(got[:, :2], np.zeros((3, 2)), atol=1e-7)
    np.testing.assert_allclose(got[:, 2], [math.log1p(1) / 10] * 2 + [math.log1p(2) / 10], rtol=1e-6)


def test_out_of_fold_features_carry_no_label_signal_on_random_labels():
    """Labels drawn independently of the path: a training row's prior must not tell its label. Leaving each row's
    own label out (the old features) gives every positive a lower rate than every negative of the same path
    (within-path AUC 0). Out of fold, what remains within a path is the residual of any cross-fitted statistic on
    a finite sample (a fold richer in positives reads its path lower), not a rule that separates the labels."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    paths = [f"p{rng.integers(8)},q{rng.integers(3)}" for _ in range(3000)]
    labels = rng.integers(0, 2, len(paths)).tolist()
    queries = rng.integers(0, 1500, len(paths))
    priors = PrefixPriors.fit(paths, labels, depth=2, strength=20.0)
    features = priors.out_of_fold_features(paths, labels, queries, seed=1)
    paths, labels = np.array(paths), np.array(labels)
    aucs = [roc_auc_score(labels[paths == p], features[paths == p, 1]) for p in sorted(set(paths))
            if 0 < labels[paths == p].mean() < 1]
    assert 0.35 < np.mean(aucs) < 0.65 and min(aucs) > 0.2
    assert 0.45 < roc_auc_score(labels, features[:, 1]) < 0.55


def test_out_of_fold_features_keep_a_query_in_one_inner_fold():
    paths = ["a,x"] * 6 + ["b,y"] * 6
    labels = [1, 1, 1, 0, 0, 0] * 2
    queries = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    got = PrefixPriors.fit(paths, labels, depth=2).out_of_fold_features(paths, labels, queries, n_folds=2, seed=0)
    for q in range(4):  # rows of one query were scored by the same inner priors
        rows = [i for i, g in enumerate(queries) if g == q]
        assert (got[rows] == got[rows[0]]).all()


def test_training_priors_group_a_query_by_its_text_not_its_translation(tiny_backbone):
    """One query under two translations (or none) is one query: its rows share an inner fold, so none reads the
    others' labels. Grouping by the model's query side (`text_a`) would split it in two."""
    import pandas as pd
    from transformers import AutoTokenizer

    from mtl.config import ExperimentConfig
    from mtl.data.pairs import PairTokenizer
    from mtl.data.tasks import make_task_data

    n = 12
    records = pd.DataFrame({
        "id": [str(i) for i in range(4 * n)], "language": ["es"] * (4 * n),
        "origin_query": [f"q{i // 4}" for i in range(4 * n)],
        "translated_query": [("", f"t{i}", f"u{i}", "")[i % 4] for i in range(4 * n)],
        "category_path": ["a,x", "a,x", "b,y", "b,y"] * n, "label": [1, 0, 0, 1] * n})
    cfg = ExperimentConfig()
    cfg.augment.translation, cfg.data.cache_dir = True, None
    pairs = PairTokenizer(AutoTokenizer.from_pretrained(str(tiny_backbone)), "decoder", max_length=32)
    priors = PrefixPriors.fit(records["category_path"].tolist(), records["label"].tolist(), depth=2)
    data = make_task_data(records, "qc", cfg, pairs, priors, fitted_on=True)
    expected = priors.out_of_fold_features(records["category_path"].tolist(), records["label"].tolist(),
                                           records["origin_query"].tolist(), seed=cfg.data.split_seed)
    np.testing.assert_array_equal(data.features[:, :priors.n_features], expected)
    assert len(set(data.queries[:4].tolist())) == 3  # the packed batches' query key stays the model's text


def test_priors_unseen_prefix(priors):
    got = priors.features(["c,z", "a,q"])
    np.testing.assert_array_equal(got[0], np.zeros(5, dtype=np.float32))
    assert got[1, 1] == 0.0 and got[1, 3] == 0.0
    assert got[1, 0] == pytest.approx(0.1)
    assert got[1, 4] == 0.5


def test_priors_dict_round_trip(priors):
    d = json.loads(json.dumps(priors.to_dict()))
    back = PrefixPriors.from_dict(d)
    assert back == priors
    np.testing.assert_array_equal(back.features(PATHS), priors.features(PATHS))


def test_seen_buckets_say_how_much_of_a_path_training_saw():
    tree = Taxonomy.from_paths(["home & garden,kitchen,cookware", "food,grocery,flour, baking and cooking"])
    assert tree.seen("home & garden,kitchen,cookware", 2) == "seen path"
    assert tree.seen("home & garden,kitchen", 2) == "seen path"  # an inner node of a seen path
    assert tree.seen("home & garden,kitchen,bakeware", 2) == "seen group"
    assert tree.seen("food,grocery,flour, baking and cooking,rye", 2) == "seen group"  # ", " stays inside a level
    assert tree.seen("home & garden,bath,towels", 2) == "unseen group"
    assert tree.seen("home & garden,bath,towels", 1) == "seen group"
    assert tree.seen("toys", 2) == "unseen group"


def test_node_ids_back_off_to_the_deepest_known_ancestor():
    from mtl.taxonomy import NodeIndex

    tree = Taxonomy.from_paths(["home & garden,kitchen,cookware", "food,grocery,flour, baking and cooking"])
    index = NodeIndex.from_taxonomy(tree)
    assert index.slots == 3 and len(index.nodes) == 6
    known, unseen_leaf, unseen_branch, inner = index.ids(["home & garden,kitchen,cookware",
                                                          "home & garden,kitchen,bakeware", "toys,dolls",
                                                          "food,grocery"])
    assert (known > 0).all() and list(unseen_leaf) == [known[0], known[1], 0]  # shares its ancestors' ids
    assert not unseen_branch.any()
    assert list(inner[:2]) == [index.nodes.index("food") + 1, index.nodes.index("food,grocery") + 1]
    assert index.ids(["food,grocery,flour, baking and cooking"])[0, 2] == \
        index.nodes.index("food,grocery,flour, baking and cooking") + 1  # ", " stays inside the third level
