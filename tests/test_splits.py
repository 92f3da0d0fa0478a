import numpy as np
import pandas as pd
import pytest

from mtl.data.records import read_records
from mtl.errors import ConfigError, LeakageError, MtlError
from mtl.splits import (assign_folds, category_nodes, check_category_leakage, check_leakage, check_split,
                        format_split_report, normalise_query, overlap_report, split_groups, split_report)
from mtl.taxonomy import join_levels, parse_path
from tests.conftest import REPO


def sliced(path: str, n: int) -> str:
    """The first n levels cut from the path text: an oracle independent of the tree."""
    return join_levels(parse_path(normalise_query(path))[:n])


def generated(task: str, n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Many rows per query / category group, several languages, ~40% positives."""
    rng = np.random.default_rng(seed)
    langs = rng.choice(["en", "es", "ru", "ja", "ar"], n)
    tops = ["food", "home & garden", "clothing, shoes & accessories", "electronics", "toys"]
    paths = [f"{rng.choice(tops)},sub{rng.integers(4)},leaf{rng.integers(5)}" for _ in range(n)]
    queries = [f"query {rng.integers(150)}" for _ in range(n)]
    frame = pd.DataFrame({"id": range(n), "language": langs, "origin_query": queries,
                          "label": (rng.random(n) < 0.4).astype(int)})
    frame["category_path" if task == "qc" else "item_title"] = paths if task == "qc" else queries
    return frame


def test_qi_folds_never_share_a_query():
    records = generated("qi")
    folds = assign_folds(records, "qi", "ca", n_folds=5)
    per_query = pd.Series(folds).groupby(records["origin_query"].str.lower()).nunique()
    assert per_query.max() == 1
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]


def test_qc_folds_never_share_the_first_two_levels():
    records = generated("qc")
    folds = assign_folds(records, "qc", "ca", n_folds=4, qc_group_levels=2)
    groups = records["category_path"].map(lambda p: sliced(p, 2))
    assert pd.Series(folds).groupby(groups).nunique().max() == 1


def test_grouped_split_keeps_label_and_language_mix():
    records = generated("qi", n=3000)
    folds = assign_folds(records, "qi", "ca", n_folds=5)
    overall = records["label"].mean()
    for fold in range(5):
        part = records[folds == fold]
        assert abs(part["label"].mean() - overall) < 0.05
        assert part["language"].nunique() == 5


def test_language_split_holds_out_whole_languages():
    records = generated("qi")
    folds = assign_folds(records, "qi", "language", n_folds=5)
    assert pd.Series(folds).groupby(records["language"]).nunique().max() == 1
    assert len(set(folds)) == 5


def test_language_split_needs_enough_languages():
    with pytest.raises(MtlError, match="5 languages cannot fill 6 folds"):
        assign_folds(generated("qi"), "qi", "language", n_folds=6)


def test_random_split_leaks_queries_and_the_report_shows_it():
    records = generated("qi")
    random_folds = assign_folds(records, "qi", "random", n_folds=5)
    grouped_folds = assign_folds(records, "qi", "ca", n_folds=5)
    assert min(overlap_report(records, "qi", random_folds).values()) > 0.5
    assert max(overlap_report(records, "qi", grouped_folds).values()) == 0.0


def test_leakage_check_names_the_leaked_group():
    groups = pd.Series(["a", "a", "b"])
    with pytest.raises(LeakageError, match="1 groups appear in more than one fold, e.g. 'a'"):
        check_leakage(groups, np.array([0, 1, 1]))


def test_split_is_deterministic_for_a_seed():
    # QI: 150 query groups; StratifiedGroupKFold only uses the seed to break ties, which few groups rarely have.
    records = generated("qi")
    assert (assign_folds(records, "qi", "ca", 5, seed=1) == assign_folds(records, "qi", "ca", 5, seed=1)).all()
    assert (assign_folds(records, "qi", "ca", 5, seed=1) != assign_folds(records, "qi", "ca", 5, seed=2)).any()


def test_qc_group_uses_the_comma_space_rule():
    records = pd.DataFrame({"category_path": ["food,grocery,flour, baking and cooking", "food,grocery,rice"],
                            "language": ["en", "en"], "origin_query": ["a", "b"], "label": [1, 0]})
    assert split_groups(records, "qc", "ca", 3).tolist() == ["food,grocery,flour, baking and cooking",
                                                             "food,grocery,rice"]


@pytest.mark.filterwarnings("ignore:The groups parameter is ignored")
def test_a_grouped_split_that_leaks_is_refused(monkeypatch):
    from sklearn.model_selection import StratifiedKFold

    def ignores_groups(n_splits, shuffle, random_state):
        return StratifiedKFold(n_splits=n_splits, shuffle=shuffle, random_state=random_state)

    monkeypatch.setattr("mtl.splits.StratifiedGroupKFold", ignores_groups)
    with pytest.raises(LeakageError, match="groups appear in more than one fold"):
        assign_folds(generated("qi"), "qi", "ca", n_folds=5)


def test_qc_folds_keep_language_top_category_and_label_mix():
    rng = np.random.default_rng(1)
    records = generated("qc", n=4000)
    # Many small second-level groups per top-level category, so each fold can get its share of every category.
    records["category_path"] = [f"{p.split(',sub')[0]},sub{rng.integers(40)},leaf" for p in records["category_path"]]
    folds = assign_folds(records, "qc", "ca", n_folds=4, qc_group_levels=2)
    top = records["category_path"].map(lambda p: sliced(p, 1))
    for column in (records["language"], top, records["label"]):
        overall = column.value_counts(normalize=True)
        for fold in range(4):
            share = column[folds == fold].value_counts(normalize=True).reindex(overall.index, fill_value=0)
            assert (share - overall).abs().max() < 0.03, (column.name, fold)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_folds": 1}, "at least 2 folds"),
    ({"n_folds": 5, "qc_group_levels": 0}, "QC group levels must be >= 1"),
])
def test_impossible_split_options_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        assign_folds(generated("qc"), "qc", "ca", **kwargs)


def test_qc_groups_ignore_case_and_repeated_spaces_like_training_does():
    paths = ["Food,Grocery,rice", "food,grocery,flour", "FOOD,Grocery ,x", "home  & garden,kitchen,a",
             "home & garden,kitchen,b"]
    records = pd.DataFrame({"category_path": paths, "language": ["en"] * 5, "origin_query": list("abcde"),
                            "label": [1, 0, 1, 0, 1]})
    assert split_groups(records, "qc", "ca", 2).tolist() == ["food,grocery"] * 3 + ["home & garden,kitchen"] * 2


def few(n_rows: int, n_queries: int, languages=("en",)) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n_rows), "language": [languages[i % len(languages)] for i in range(n_rows)],
                         "origin_query": [f"q{i % n_queries}" for i in range(n_rows)], "item_title": "t",
                         "label": [i % 2 for i in range(n_rows)]})


@pytest.mark.parametrize("records, strategy, n_folds, message", [
    (few(4, 4), "ca", 3, "qi ca split into 3 folds: 4 rows in 4 queries, and the largest language x label stratum "
                         "has 2 rows; the split needs a group per fold and a stratum with a row per fold, so use at "
                         "most 2 folds"),
    (few(20, 2), "ca", 3, "20 rows in 2 queries, and the largest language x label stratum has 10 rows; the split "
                          "needs a group per fold and a stratum with a row per fold, so use at most 2 folds"),
    (few(3, 3), "random", 5, "qi random split into 5 folds: 3 rows, and the largest language x label stratum has 2 "
                             "rows; the split needs a stratum with a row per fold, so use at most 2 folds"),
    (few(6, 6, ("en", "es", "ru")), "ca", 3, "largest language x label stratum has 1 row; the split needs a group "
                                             "per fold and a stratum with a row per fold, so there are too few rows "
                                             "to split"),
    (few(9, 9), "language", 2, "language split: 1 languages cannot fill 2 folds; it needs at least 2 languages"),
], ids=["4 rows, 3 folds", "2 queries", "3 rows, 5 folds", "1 row per stratum", "1 language"])
def test_a_fold_count_the_records_cannot_fill_says_how_many_rows_and_groups_and_what_works(records, strategy,
                                                                                         n_folds, message):
    with pytest.raises(MtlError) as err:
        assign_folds(records, "qi", strategy, n_folds)
    assert message in str(err.value)


def test_a_qc_query_split_counts_queries_where_a_ca_split_counts_category_groups():
    records = generated("qc", n=40).assign(origin_query=[f"q{i % 2}" for i in range(40)])
    with pytest.raises(MtlError, match=r"qc query split into 3 folds: 40 rows in 2 queries, "):
        assign_folds(records, "qc", "query", 3)
    with pytest.raises(MtlError, match=r"qc ca split into 30 folds: 40 rows in \d+ category groups, "):
        assign_folds(records, "qc", "ca", 30)


def test_the_largest_fold_count_the_message_offers_works():
    with pytest.raises(MtlError, match="use at most 2 folds"):
        assign_folds(few(4, 4), "qi", "ca", 3)
    assert sorted(set(assign_folds(few(4, 4), "qi", "ca", 2))) == [0, 1]


def test_a_split_that_leaves_a_fold_empty_is_refused(monkeypatch):
    from sklearn.model_selection import StratifiedGroupKFold

    def two_folds_only(self, X, y, groups):
        rows = np.arange(len(X))
        yield rows[len(X) // 2:], rows[: len(X) // 2]
        yield rows[: len(X) // 2], rows[len(X) // 2:]

    monkeypatch.setattr(StratifiedGroupKFold, "split", two_folds_only)
    with pytest.raises(MtlError, match=r"qi ca split: folds \[2\] of 3 came out empty \(1200 rows, 150 groups\)"):
        assign_folds(generated("qi"), "qi", "ca", n_folds=3)


def qc_rows(paths: list[str]) -> pd.DataFrame:
    n = len(paths)
    return pd.DataFrame({"category_path": paths, "language": ["en"] * n, "origin_query": [f"q{i}" for i in range(n)],
                         "label": [i % 2 for i in range(n)]})


LEAKY_TREE = ["food,grocery,rice", "food,grocery,flour, baking and cooking,cake", "food,drinks,tea", "food",
              "toys,dolls"]


def test_tree_leakage_check_names_the_subtree_split_across_folds():
    # Two paths under food > grocery (one deeper than the other) in folds 0 and 1.
    nodes = category_nodes(qc_rows(LEAKY_TREE))
    with pytest.raises(LeakageError, match=r"1 category subtrees \(depth 2\) have records in more than one fold, "
                                           r"e\.g\. `food > grocery` in folds 0, 1$"):
        check_category_leakage(nodes, np.array([0, 1, 1, 1, 1]), levels=2)


def test_tree_leakage_check_passes_distinct_subtrees_and_a_shallower_path_as_its_own_group():
    nodes = category_nodes(qc_rows(LEAKY_TREE))
    # grocery, drinks, the path `food` alone and toys > dolls each in their own fold.
    check_category_leakage(nodes, np.array([0, 0, 1, 2, 3]), levels=2)
    # At depth 1 everything under food is one subtree, the path `food` included.
    with pytest.raises(LeakageError, match=r"`food` in folds 0, 1, 2"):
        check_category_leakage(nodes, np.array([0, 0, 1, 2, 3]), levels=1)


def test_tree_leakage_check_refuses_one_shallow_path_in_two_folds():
    nodes = category_nodes(qc_rows(["food", "food", "food,grocery"]))
    with pytest.raises(LeakageError, match=r"`food` in folds 0, 1"):
        check_category_leakage(nodes, np.array([0, 1, 0]), levels=2)


def test_a_qc_split_grouped_wrongly_is_caught_by_the_tree_walk(monkeypatch):
    # Grouping by whole path keeps paths apart but lets one depth-2 subtree into several folds: the check rebuilds
    # the subtrees from the tree, not from the groups the split used.
    def by_whole_path(records, task, strategy, qc_group_levels=2):
        return records["category_path"].map(normalise_query)

    monkeypatch.setattr("mtl.splits.split_groups", by_whole_path)
    with pytest.raises(LeakageError, match=r"category subtrees \(depth 2\) have records in more than one fold"):
        assign_folds(generated("qc"), "qc", "ca", n_folds=4, qc_group_levels=2)


@pytest.fixture(scope="module")
def sample_qc():
    return read_records(REPO / "data" / "sample" / "train_QC.txt", "qc", require_label=True)[0]


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_tree_groups_of_the_sample_file_are_its_first_levels_and_its_split_does_not_leak(sample_qc, levels):
    # Equal groups give the folds the string-sliced grouping gave before the tree (same splitter, same seed).
    groups = split_groups(sample_qc, "qc", "ca", levels)
    assert groups.tolist() == sample_qc["category_path"].map(lambda p: sliced(p, levels)).tolist()
    folds = assign_folds(sample_qc, "qc", "ca", n_folds=5, qc_group_levels=levels)
    check_category_leakage(category_nodes(sample_qc), folds, levels)
    assert pd.Series(folds).groupby(groups.to_numpy()).nunique().max() == 1


def test_split_report_counts_rows_groups_and_positives_per_fold(sample_qc):
    folds = assign_folds(sample_qc, "qc", "ca", n_folds=5, qc_group_levels=2)
    report = split_report(sample_qc, "qc", "ca", folds, 2)
    groups = sample_qc["category_path"].map(lambda p: sliced(p, 2))
    sizes = groups.value_counts()
    assert (report["rows"], report["groups"], report["unit"]) == (len(sample_qc), len(sizes),
                                                                   "depth-2 category subtree")
    assert report["largest_group"] == {"name": sizes.index[0], "rows": int(sizes.iloc[0]),
                                       "share": sizes.iloc[0] / len(sample_qc)}
    for fold, row in report["folds"].items():
        part = folds == int(fold)
        assert row["rows"] == part.sum()
        assert row["groups"] == groups[part].nunique()
        assert row["positive_rate"] == pytest.approx(sample_qc["label"][part].mean())
        assert row["largest_group_share"] == groups[part].value_counts().iloc[0] / len(sample_qc)
        assert row["overlap"] == 0.0
    assert sum(row["rows"] for row in report["folds"].values()) == len(sample_qc)
    assert report["warning"] is None
    shown = " > ".join(parse_path(sizes.index[0]))
    assert f"the largest, `{shown}`, holds {int(sizes.iloc[0])} rows" in format_split_report(report)


def test_split_report_warns_when_one_subtree_is_more_than_a_folds_share():
    records = generated("qc")
    third = len(records) // 3  # a third of the rows under electronics, spread over ten of its subcategories
    records.loc[:third, "category_path"] = [f"electronics,phones {i % 10},cases" for i in range(third + 1)]
    folds = assign_folds(records, "qc", "ca", n_folds=4, qc_group_levels=1)
    report = split_report(records, "qc", "ca", folds, 1)
    assert report["largest_group"]["name"] == "electronics"
    assert report["warning"].startswith("QC ca split: the largest depth-1 category subtree, `electronics`, holds ")
    assert "more than a fold's share (1/4 = 25.0%)" in report["warning"]
    assert "group by more category levels" in report["warning"]
    # Grouped deeper, no subtree is that large; the random split is not grouped, so never warned about.
    assert split_report(records, "qc", "ca", assign_folds(records, "qc", "ca", 4, qc_group_levels=2), 2)["warning"] \
        is None
    assert split_report(records, "qc", "random", assign_folds(records, "qc", "random", 4), 1)["warning"] is None


def test_a_query_split_keeps_qc_queries_whole_while_their_paths_cross_folds_and_a_straddling_query_is_refused():
    records = generated("qc")
    folds = assign_folds(records, "qc", "query", n_folds=4)
    assert pd.Series(folds).groupby(records["origin_query"]).nunique().max() == 1 and len(set(folds)) == 4
    assert min(overlap_report(records, "qc", folds).values()) > 0.9  # as a test of whole queries shares paths
    assert max(overlap_report(records, "qc", assign_folds(records, "qc", "ca", n_folds=4)).values()) == 0.0
    straddling = folds.copy()
    first = np.flatnonzero(records["origin_query"] == records["origin_query"][0])
    straddling[first[0]] = (folds[first[1]] + 1) % 4
    with pytest.raises(LeakageError, match="1 groups appear in more than one fold, e.g. 'query "):
        check_split(records, "qc", "query", straddling)
    check_split(records, "qc", "ca", assign_folds(records, "qc", "ca", n_folds=4))


def test_split_report_of_qi_and_language_splits_names_their_units():
    records = generated("qi")
    folds = assign_folds(records, "qi", "language", n_folds=5)
    report = split_report(records, "qi", "language", folds)
    assert report["unit"] == "language" and report["groups"] == 5
    assert report["warning"] is None  # one language per fold: unequal folds by design, not worth a warning
    assert all(row["groups"] == 1 for row in report["folds"].values())
    assert split_report(records, "qi", "ca", assign_folds(records, "qi", "ca", 5))["unit"] == "query"
