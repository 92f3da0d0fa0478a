"""`inspect_tree` and `mtl taxonomy`: what the category-tree report counts, on trees small enough to count by hand."""

import json
import logging

import pytest

from mtl.cli import main
from mtl.taxonomy import Taxonomy, format_inspection, inspect_tree, name_key, near_duplicate_names
from tests.conftest import make_records, write_jsonl


def qc_rows(paths, labels=None):
    rows = [{"id": i, "language": "en", "origin_query": f"q{i}", "category_path": path}
            for i, path in enumerate(paths)]
    for row, label in zip(rows, labels or []):
        row["label"] = label
    return rows


def spellings(taxonomy):
    return [sorted(s["name"] for s in grp["spellings"]) for grp in near_duplicate_names(taxonomy)]


def test_a_level_name_holding_comma_space_is_one_level():
    facts = inspect_tree(Taxonomy.from_paths(["food,flour, baking and cooking,cake", "food,grocery"]))
    assert facts["nodes_per_depth"] == {1: 1, 2: 2, 3: 1}
    assert facts["path_depth"] == {"min": 2, "max": 3, "mean": 2.5, "paths_per_depth": {2: 1, 3: 1}}
    assert facts["comma_names"] == {"names": 1, "paths": 1, "rows": 1,
                                    "examples": [{"path": "food,flour, baking and cooking,cake", "rows": 1}]}


@pytest.mark.parametrize("name, key", [
    ("Pumps", ("pumps", None)),
    ("pumps（do not post in this category）", ("pumps", "do not post in this category")),
    ("signal\xa0lamp  assembly", ("signal lamp assembly", None)),
    ("ＪＥＡＮＳ (New)", ("jeans", "new")),
    ("human wigs( for black)", ("human wigs", "for black")),
    ("(other)", ("(other)", None)),
])
def test_name_key_folds_case_width_spaces_and_splits_a_trailing_note(name, key):
    assert name_key(name) == key


def test_near_duplicates_across_case_width_nbsp_and_notes_but_not_different_names():
    taxonomy = Taxonomy.from_paths([
        "shoes,pumps", "shoes,Pumps（do not post in this category）",
        "car,signal lamp", "home,signal\xa0lamp",
        "clothing,jeans（new）", "clothing,men,JEANS (new)",
        "wigs,human wigs(for white)", "wigs,human wigs(for black)",
        "shoes,boots", "shoes,shoe", "toys,dolls",
    ])
    assert spellings(taxonomy) == [["Pumps（do not post in this category）", "pumps"],
                                   ["JEANS (new)", "jeans（new）"], ["signal lamp", "signal\xa0lamp"]]
    pumps = near_duplicate_names(taxonomy)[0]
    assert pumps["same_parent"] and pumps["rows"] == 2
    assert pumps["spellings"][1]["occurs"] == [{"parent": "shoes", "depth": 2, "rows": 1}]


def test_notes_that_differ_are_linked_only_through_a_spelling_without_one():
    wigs = ["wigs,human wigs(for white)", "wigs,human wigs(for black)"]
    assert spellings(Taxonomy.from_paths(wigs)) == []
    assert spellings(Taxonomy.from_paths([*wigs, "wigs,Human Wigs"])) == [
        ["Human Wigs", "human wigs(for black)", "human wigs(for white)"]]


def test_paths_that_are_prefixes_of_other_paths():
    taxonomy = Taxonomy.from_paths(["a,b", "a,b", "a,b,c", "a,b,d", "a,e", "f,g,h"])
    assert taxonomy.path_rows() == {"a,b": 2, "a,b,c": 1, "a,b,d": 1, "a,e": 1, "f,g,h": 1}
    assert inspect_tree(taxonomy)["prefix_paths"] == {
        "paths": 1, "rows": 2, "examples": [{"path": "a,b", "rows": 2, "longer_paths": 2}]}


def test_branch_sizes_and_positive_rates():
    paths = ["a,x", "a,x", "a,y,z", "a,y", "b,w", "c,v,u"]
    facts = inspect_tree(Taxonomy.from_paths(paths, [1, 0, 1, 1, 0, 1]))
    assert facts["rows"] == 6 and facts["paths"] == 5 and facts["positive_rate"] == pytest.approx(4 / 6)
    assert facts["branches"] == [
        {"category": "a", "paths": 3, "nodes": 4, "rows": 4, "positives": 3, "positive_rate": 0.75},
        {"category": "b", "paths": 1, "nodes": 2, "rows": 1, "positives": 0, "positive_rate": 0.0},
        {"category": "c", "paths": 1, "nodes": 3, "rows": 1, "positives": 1, "positive_rate": 1.0},
    ]
    unlabelled = inspect_tree(Taxonomy.from_paths(paths))
    assert unlabelled["positive_rate"] is None and "positive_rate" not in unlabelled["branches"][0]
    assert "positive rate" not in format_inspection(unlabelled)


def test_examples_are_capped_and_the_most_rows_come_first():
    paths = ["a,x, y"] * 3 + ["a,p, q"] + ["a,m, n"] * 2
    examples = inspect_tree(Taxonomy.from_paths(paths), examples=2)["comma_names"]["examples"]
    assert examples == [{"path": "a,x, y", "rows": 3}, {"path": "a,m, n", "rows": 2}]


def test_cli_prints_markdown_and_writes_the_same_facts_as_json(tmp_path, capsys):
    source = write_jsonl(tmp_path / "qc.jsonl", qc_rows(
        ["food,flour, baking and cooking", "food,grocery", "shoes,pumps", "shoes,Pumps（old）", " , "],
        [1, 0, 1, 1, 0]))
    out = tmp_path / "facts" / "taxonomy.json"
    assert main(["-q", "taxonomy", str(source), "--json", str(out), "--examples", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"# Category tree of {source}\n")
    assert "- rows: 4, 75.0% positive (1 more without a category level, left out)" in text
    assert "| food | 2 | 3 | 2 | 50.0% |" in text
    assert "- `food > flour, baking and cooking` (1 row)" in text
    assert "  - `Pumps（old）`: under `shoes`, depth 2, 1 row" in text
    facts = json.loads(out.read_text(encoding="utf-8"))
    assert facts["file"] == str(source) and facts["rows_without_category"] == 1
    assert facts["rows"] == 4 and facts["paths"] == 4 and facts["near_duplicates"]["groups"] == 1
    assert facts["nodes_per_depth"] == {"1": 2, "2": 4}


def test_cli_refuses_a_qi_file_in_one_line(tmp_path, caplog):
    source = write_jsonl(tmp_path / "qi.jsonl", make_records("qi", 5))
    with caplog.at_level(logging.ERROR):
        assert main(["taxonomy", str(source), "--json", str(tmp_path / "out.json")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"{source}: a QI file (item_title, no category_path): mtl taxonomy reads QC records"]
    assert not (tmp_path / "out.json").exists()


def test_cli_refuses_json_output_onto_its_input(tmp_path, caplog):
    source = write_jsonl(tmp_path / "qc.jsonl", qc_rows(["a,b"]))
    with caplog.at_level(logging.ERROR):
        assert main(["taxonomy", str(source), "--json", str(source)]) == 2
    assert "is the input file" in caplog.text
    assert json.loads(source.read_text())["category_path"] == "a,b"
