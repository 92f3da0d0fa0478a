import json
import re

import pytest

from mtl.data.records import clean_records, load_task_records, read_records, write_records
from mtl.errors import DataError


def write(tmp_path, text, name="train_QC.txt", mode="w"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def qc(**kw):
    row = {"id": 1, "language": "es", "origin_query": "sartén", "category_path": "home & garden,kitchen", "label": 1}
    row.update(kw)
    return json.dumps(row, ensure_ascii=False)


def test_reads_jsonl_and_infers_the_task(tmp_path):
    path = write(tmp_path, qc() + "\n" + qc(id=2, label=0, translated_query="frying pan") + "\n")
    records, report = read_records(path)
    assert records.attrs["task"] == "qc"
    assert records["label"].tolist() == [1, 0]
    assert records["translated_query"].tolist() == ["", "frying pan"]
    assert records["_line"].tolist() == [1, 2]
    assert report.rows == 2


def test_reads_csv_with_the_same_columns(tmp_path):
    path = write(tmp_path, "id,language,origin_query,item_title,label\n7,ru,обувь,\"Nike Air, men\",1\n", "x.csv")
    records, _ = read_records(path)
    assert records.attrs["task"] == "qi"
    assert records.loc[0, "item_title"] == "Nike Air, men"
    assert records.loc[0, "id"] == 7


@pytest.mark.parametrize("text, line, field, problem", [
    (qc() + "\n{not json\n", 2, None, "not valid JSON"),
    (qc() + "\n" + json.dumps({"id": 2, "language": "es", "origin_query": "x", "label": 1}) + "\n", 2,
     "category_path", "missing"),
    (qc(label="yes") + "\n", 1, "label", "must be 0 or 1, got 'yes'"),
    (qc(label=2) + "\n", 1, "label", "must be 0 or 1"),
    (qc() + "\n" + qc() + "\n", 2, "id", "duplicate id 1 (first seen on line 1)"),
    ("[1, 2]\n", 1, None, "expected a JSON object"),
    (qc(language="") + "\n", 1, "language", "empty"),
    (qc(origin_query={"a": 1}) + "\n", 1, "origin_query", "expected text"),
])
def test_bad_records_name_file_line_and_field(tmp_path, text, line, field, problem):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_records(path)
    assert (err.value.line, err.value.field) == (line, field)
    assert problem in str(err.value)
    assert str(err.value).startswith(f"{path}:{line}")


def test_invalid_utf8_names_its_line(tmp_path):
    path = write(tmp_path, (qc() + "\n").encode() + b'{"id": 2, "origin_query": "\xff"}\n')
    with pytest.raises(DataError, match=r":2: not valid UTF-8"):
        read_records(path)


def test_bom_and_crlf_are_accepted(tmp_path):
    path = write(tmp_path, ("\ufeff" + qc() + "\r\n" + qc(id=2) + "\r\n").encode("utf-8"))
    records, _ = read_records(path)
    assert len(records) == 2 and records.loc[0, "origin_query"] == "sartén"


@pytest.mark.parametrize("raw, expected", [(1, 1), (0, 0), ("1", 1), ("0.0", 0), (1.0, 1), (True, 1), ("true", 1)])
def test_label_spellings_are_normalised(tmp_path, raw, expected):
    records, _ = read_records(write(tmp_path, qc(label=raw) + "\n"))
    assert records.loc[0, "label"] == expected


def test_labels_required_when_asked(tmp_path):
    row = json.dumps({"id": 1, "language": "en", "origin_query": "pan", "category_path": "a,b"})
    assert "label" not in read_records(write(tmp_path, row + "\n"))[0]
    with pytest.raises(DataError, match="field 'label': missing"):
        read_records(write(tmp_path, row + "\n"), require_label=True)


def test_task_cannot_be_inferred_without_a_target_field(tmp_path):
    path = write(tmp_path, json.dumps({"id": 1, "language": "en", "origin_query": "x", "label": 1}) + "\n")
    with pytest.raises(DataError, match="cannot tell the task"):
        read_records(path)


def test_cleaning_collapses_spaces_lowercases_and_counts_drops(tmp_path):
    rows = [qc(origin_query="  Frying   PAN "), qc(id=2, origin_query="   "),
            qc(id=3, category_path=None), qc(id=4, origin_query=None)]
    records, report = load_task_records(write(tmp_path, "\n".join(rows) + "\n"))
    assert records["origin_query"].tolist() == ["frying pan"]
    assert report.dropped == {"an empty query": 2, "an empty category_path": 1}
    assert "dropped 2 with an empty query" in report.summary()


def test_cleaning_can_be_switched_off_but_empties_are_still_dropped(tmp_path):
    records, _ = read_records(write(tmp_path, qc(origin_query="Frying  PAN") + "\n" + qc(id=2, origin_query="") + "\n"))
    cleaned, dropped = clean_records(records, collapse_spaces=False, lowercase=False)
    assert cleaned["origin_query"].tolist() == ["Frying  PAN"]
    assert dropped["an empty query"] == 1


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv"])
def test_write_records_round_trips(tmp_path, name):
    src = write(tmp_path, qc(category_path="food,grocery,flour, baking and cooking") + "\n" + qc(id=2, label=0) + "\n")
    records, _ = read_records(src)
    write_records(records, tmp_path / name)
    again, _ = read_records(tmp_path / name)
    assert again.drop(columns="_line").equals(records.drop(columns="_line"))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("given", ["0042", "100", "²", "٣", "a-7", 100, 0, 10**30])
def test_json_ids_are_kept_exactly_as_given(tmp_path, given):
    records, _ = read_records(write(tmp_path, qc(id=given) + "\n"))
    value = records.loc[0, "id"]
    assert value == given and type(value.item() if hasattr(value, "item") else value) is type(given)


def test_a_whole_json_float_id_is_its_integer(tmp_path):
    assert read_records(write(tmp_path, qc(id=7.0) + "\n"))[0].loc[0, "id"] == 7


@pytest.mark.parametrize("cell, expected", [("100", 100), ("0", 0), ("0042", "0042"), ("+1", "+1"), ("٣", "٣"),
                                            ("1e3", "1e3")])
def test_csv_ids_are_integers_only_when_written_as_plain_integers(tmp_path, cell, expected):
    path = write(tmp_path, f"id,language,origin_query,item_title,label\n{cell},en,a,b,1\n", "x.csv")
    assert read_records(path)[0].loc[0, "id"] == expected


@pytest.mark.parametrize("given", [True, 1.5, None, [1], "", "  "])
def test_bad_ids_name_file_line_and_field(tmp_path, given):
    path = write(tmp_path, qc() + "\n" + qc(id=given).replace("NaN", "null") + "\n")
    with pytest.raises(DataError) as err:
        read_records(path)
    assert (err.value.line, err.value.field) == (2, "id")


def test_nan_id_is_refused(tmp_path):
    path = write(tmp_path, qc().replace('"id": 1', '"id": NaN') + "\n")
    with pytest.raises(DataError, match=r":1: not valid JSON: NaN is not a JSON number"):
        read_records(path)


def test_an_id_and_its_text_are_duplicates(tmp_path):
    with pytest.raises(DataError, match=r":2: field 'id': duplicate id '1' \(first seen on line 1\)"):
        read_records(write(tmp_path, qc(id=1) + "\n" + qc(id="1") + "\n"))


@pytest.mark.parametrize("line, problem", [
    ('{"id": ' + "9" * 5000 + ', "language": "en"}', "not valid JSON: Exceeds the limit"),
    ("[" * 100_000 + "]" * 100_000, "not valid JSON: nested too deeply"),
], ids=["5000-digit integer", "100000 levels deep"])
def test_json_python_cannot_parse_is_a_data_error_with_its_line(tmp_path, line, problem):
    with pytest.raises(DataError, match=rf"train_QC.txt:2: {problem}"):
        read_records(write(tmp_path, qc() + "\n" + line + "\n"))


def test_csv_nan_and_null_are_text_and_only_empty_cells_are_missing(tmp_path):
    path = write(tmp_path, "id,language,origin_query,item_title,label\n1,en,a,NaN,1\n2,en,b,null,0\n3,en,c,,1\n",
                 "x.csv")
    records, report = load_task_records(path, lowercase=False)
    assert records["item_title"].tolist() == ["NaN", "null"]
    assert report.dropped["an empty item_title"] == 1


ODD_ROWS = [
    {"id": "0042", "language": "es", "origin_query": "sartén", "category_path": "a,b", "label": "1",
     "meta": {"src": "log"}, "n": 3},
    {"id": 100, "language": "en", "origin_query": "pan", "category_path": "a,c", "label": 0, "translated_query": None},
    {"id": "100x", "language": "en", "origin_query": "pot", "category_path": "a,d", "label": True, "n": 5},
]


def test_written_rows_keep_the_fields_as_read_plus_added_columns(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ODD_ROWS), encoding="utf-8")
    records, _ = read_records(source)
    records["fold"] = [2, 0, 1]
    write_records(records, tmp_path / "out.txt", columns=("fold",))
    lines = (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()
    written = [json.loads(line, parse_constant=pytest.fail) for line in lines]
    assert written == [{**row, "fold": fold} for row, fold in zip(ODD_ROWS, [2, 0, 1])]
    assert [list(r) for r in written] == [[*row, "fold"] for row in ODD_ROWS]


def test_csv_is_written_back_with_its_columns_and_cells_plus_added_columns(tmp_path):
    text = "id,language,origin_query,item_title,label,note\n0042,en,a,NaN,1.0,\n7,es,b,t,true,x\n"
    records, _ = read_records(write(tmp_path, text, "in.csv"))
    records["fold"] = [1, 0]
    write_records(records, tmp_path / "out.csv", columns=("fold",))
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines() == [
        "id,language,origin_query,item_title,label,note,fold", "0042,en,a,NaN,1.0,,1", "7,es,b,t,true,x,0"]


def test_a_column_the_caller_names_is_written_for_every_row(tmp_path):
    source = write(tmp_path, qc(id=1, language="en") + "\n" + qc(id=2) + "\n")
    records, _ = read_records(source)
    records.loc[0, "translated_query"] = "sartén"
    write_records(records, tmp_path / "out.txt", columns=("translated_query",))
    written = [json.loads(line) for line in (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()]
    assert [r["translated_query"] for r in written] == ["sartén", ""]


def test_a_frame_with_gaps_is_written_as_valid_json(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"id": [1, 2], "score": [0.5, float("nan")]})
    write_records(frame, tmp_path / "out.txt")
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert [json.loads(line, parse_constant=pytest.fail) for line in lines] == [{"id": 1, "score": 0.5}, {"id": 2}]


def csv_rows(n):
    header = "id,language,origin_query,label,item_title"
    return [header] + [f"{i},en,query {i % 40},{i % 2},title {i}" for i in range(n)]


def test_a_csv_quote_that_never_closes_names_the_line_where_it_opened(tmp_path):
    lines = csv_rows(200)
    lines[151] = lines[151].replace("title 150", '"title 150')  # row 151 of 200; the header is line 1
    path = write(tmp_path, "\n".join(lines) + "\n", "x.csv")
    with pytest.raises(DataError) as err:
        read_records(path)
    assert (err.value.line, err.value.field) == (152, "item_title")
    assert "a quoted cell opens here and never closes" in str(err.value)


def test_a_csv_quote_that_never_closes_after_a_quoted_newline_names_its_own_line(tmp_path):
    text = ("id,language,origin_query,label,item_title\n"
            '1,en,"two\nlines",1,t\n2,en,"also\ntwo",0,"open\n3,en,q,1,t\n')
    with pytest.raises(DataError, match=r"x.csv:5: field 'item_title': not valid CSV: a quoted cell opens here"):
        read_records(write(tmp_path, text, "x.csv"))


def test_quoted_newlines_in_csv_cells_are_kept(tmp_path):
    lines = csv_rows(3)
    lines[2] = '1,en,"query\non two lines",1,"title, with comma and ""quotes"""'
    records, _ = read_records(write(tmp_path, "\n".join(lines) + "\n", "x.csv"))
    assert records["origin_query"].tolist() == ["query 0", "query\non two lines", "query 2"]
    assert records.loc[1, "item_title"] == 'title, with comma and "quotes"'
    assert records["_line"].tolist() == [2, 4, 5]


def test_text_after_a_closing_csv_quote_is_refused(tmp_path):
    lines = csv_rows(3)
    lines[2] = '1,en,"query"s,1,t'
    with pytest.raises(DataError, match=r"x.csv:3: not valid CSV: ',' expected after '\"'"):
        read_records(write(tmp_path, "\n".join(lines) + "\n", "x.csv"))


@pytest.mark.parametrize("line, key", [
    ('{"id": 1, "language": "en", "origin_query": "a", "category_path": "b", "label": 0, "label": 1}', "label"),
    ('{"id": 1, "language": "en", "origin_query": "a", "category_path": "b", "meta": {"k": 1, "k": 2}}', "k"),
])
def test_a_key_repeated_in_a_json_record_is_refused_naming_line_and_key(tmp_path, line, key):
    with pytest.raises(DataError) as err:
        read_records(write(tmp_path, qc() + "\n" + line + "\n"))
    assert (err.value.line, err.value.field) == (2, key)
    assert "appears twice in one object" in str(err.value)


@pytest.mark.parametrize("value, problem", [("NaN", "NaN is not a JSON number"),
                                            ("-Infinity", "-Infinity is not a JSON number"),
                                            ("1e999", "1e999 is beyond a float's range")])
def test_a_number_json_does_not_have_is_refused_not_written_back_as_null(tmp_path, value, problem):
    line = '{"id": 1, "language": "en", "origin_query": "a", "category_path": "b", "label": 0, "score": %s}' % value
    with pytest.raises(DataError, match=f"x.jsonl:2: not valid JSON: {re.escape(problem)}"):
        read_records(write(tmp_path, qc() + "\n" + line + "\n", "x.jsonl"))


@pytest.mark.parametrize("field, raw", [
    ("origin_query", '"origin_query": "\\ud800"'),
    ("id", '"id": "a\\udfff"'),
    ("meta", '"meta": {"k": ["\\ud83d"]}'),
])
def test_a_lone_surrogate_in_any_field_is_refused_naming_line_and_field(tmp_path, field, raw):
    row = json.loads(qc())
    row.pop(field, None)
    line = json.dumps(row)[:-1] + ", " + raw + "}"
    with pytest.raises(DataError) as err:
        read_records(write(tmp_path, qc(id=2) + "\n" + line + "\n"))
    assert (err.value.line, err.value.field) == (2, field)
    assert "lone UTF-16 surrogate" in str(err.value)


def test_a_surrogate_pair_is_one_character_and_accepted(tmp_path):
    records, _ = read_records(write(tmp_path, qc().replace('"sartén"', '"pan \\ud83c\\udf73"') + "\n"))
    assert records.loc[0, "origin_query"] == "pan 🍳"


@pytest.mark.parametrize("query", ["\u200b", "\u200b\u200d\u2060", " \ufeff\u00ad ", "\x00"])
def test_a_query_of_invisible_characters_is_dropped_as_empty(tmp_path, query):
    records, report = load_task_records(write(tmp_path, qc(origin_query=query) + "\n" + qc(id=2) + "\n"))
    assert records["id"].tolist() == [2]
    assert report.dropped["an empty query"] == 1


def test_invisible_characters_inside_a_query_are_kept(tmp_path):
    records, _ = load_task_records(write(tmp_path, qc(origin_query="a\u200db") + "\n"))
    assert records["origin_query"].tolist() == ["a\u200db"]


def test_a_bare_cr_is_json_whitespace_not_a_line_end(tmp_path):
    records, _ = read_records(write(tmp_path, qc().replace(', "label"', ',\r"label"') + "\n" + qc(id=2) + "\n"))
    assert records["_line"].tolist() == [1, 2]


@pytest.mark.parametrize("make, problem", [
    (lambda p: p.symlink_to(p), "cannot read: a symbolic link loop"),
    (lambda p: __import__("os").mkfifo(p), "is not a regular file"),
    (lambda p: p.mkdir(), "is a folder, not a file"),
], ids=["symlink loop", "fifo", "folder"])
def test_an_input_that_is_not_a_readable_file_is_refused_without_opening_it(tmp_path, make, problem):
    path = tmp_path / "in.txt"
    make(path)
    with pytest.raises(DataError, match=f"in.txt: {problem}"):
        read_records(path)


@pytest.mark.parametrize("path", [",", " , ,", "\u200b"])
def test_a_category_path_without_a_level_is_dropped_as_empty(tmp_path, path):
    records, report = load_task_records(write(tmp_path, qc(category_path=path) + "\n" + qc(id=2) + "\n"))
    assert records["id"].tolist() == [2]
    assert report.dropped["an empty category_path"] == 1


def test_json_nested_deeper_than_the_writer_can_take_is_refused_at_its_line(tmp_path):
    deep = qc(id=2)[:-1] + ', "meta": ' + "[" * 500 + "]" * 500 + "}"
    with pytest.raises(DataError, match=r"train_QC.txt:2: not valid JSON here: nested more than 100 levels deep"):
        read_records(write(tmp_path, qc() + "\n" + deep + "\n"))


def test_json_nested_100_levels_is_read_and_written_back(tmp_path):
    nested = qc()[:-1] + ', "meta": ' + "[" * 99 + "]" * 99 + "}"
    records, _ = read_records(write(tmp_path, nested + "\n"))
    write_records(records, tmp_path / "out.jsonl")
    assert json.loads((tmp_path / "out.jsonl").read_text()) == json.loads(nested)


def test_an_unclosed_quote_before_later_quoted_cells_names_the_line_where_it_opened(tmp_path):
    rows = ["id,language,origin_query,category_path,label"]
    bad = '"1 oops'
    rows += [f'{i},fr,query {i},"toys,sub0,leaf4",{bad if i == 150 else 1}' for i in range(200)]
    with pytest.raises(DataError, match=r"x.csv:152: not valid CSV: this row runs on to line 153 .*a quoted cell here "
                                        "may open and never close"):
        read_records(write(tmp_path, "\n".join(rows) + "\n", "x.csv"))
