import json
import random
import re

import pandas as pd
import pytest

from blind_labels import main
from tests.conftest import make_records, write_jsonl


def fold_args(tmp_path, train) -> list[str]:  # no test split: the reader is scored on validation pairs alone
    return ["--task", "qc", "--fold", "0", "--output-dir", str(tmp_path), f"data.qc_train={train}", "cv.n_folds=3",
            f"data.cache_dir={tmp_path / 'cache'}", "data.test_fraction=0"]


def test_the_sheet_hides_labels_and_scoring_sets_a_reader_who_knows_them_above_a_model_who_does_not(tmp_path):
    train = write_jsonl(tmp_path / "qc.jsonl", make_records("qc", 600, seed=5))
    sheet, records = tmp_path / "sheet.tsv", tmp_path / "sheet.jsonl"
    main(["draw", *fold_args(tmp_path, train), "--per-language", "8", "--sheet", str(sheet), "--records",
          str(records)])
    drawn = pd.read_csv(sheet, sep="\t")
    assert list(drawn.columns) == ["id", "language", "origin_query", "category_path"]
    assert drawn["language"].value_counts().max() == 8 and drawn["id"].is_unique
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert [r["id"] for r in rows] == drawn["id"].tolist() and all("label" in r for r in rows)

    # a reader who knows each label (5 or 1) and a model that scores at random
    rng = random.Random(0)
    (tmp_path / "judged.tsv").write_text("id\tjudgment\n" + "".join(f"{r['id']}\t{5 if r['label'] else 1}\n"
                                                                    for r in rows))
    (tmp_path / "pred.jsonl").write_text("".join(
        json.dumps({"id": r["id"], "prediction": 1, "score": rng.random()}) + "\n" for r in rows))
    scored = ["score", *fold_args(tmp_path, train), "--name", "planted", "--judgments", str(tmp_path / "judged.tsv"),
              "--predictions", str(tmp_path / "pred.jsonl"), "--sheet", str(sheet), "--model", "a coin"]
    out = main(scored)
    text = out.read_text()
    assert out.name == "blind-planted.md" and "(a coin)" in text
    cells = next(line for line in text.splitlines() if line.startswith("| all |")).split("|")[2:-1]
    n, _, reader_auc, model_auc, _, reader_f1, *_ = map(float, cells)
    assert n == len(rows) and reader_auc == 1.0 and reader_f1 == 1.0 and model_auc < 0.8
    low = float(re.search(r"interval ([+-]\d\.\d{3}) to", text).group(1))
    assert low > 0  # the reader's lead is outside the bootstrap interval's reach of zero

    judged, last = [f"{r['id']}\t{5 if r['label'] else 1}" for r in rows], len(rows) + 1
    for text, error in ((["id\tjudgment", judged[0], f"{rows[1]['id']}\t6"], r"judged.tsv:3: judgment"),
                        (judged, r"judged.tsv:1: header"),  # no header: the first judgment is not silently dropped
                        (["id\tjudgment", *judged[:-1]], rf"sheet.tsv:{last}: id: {rows[-1]['id']} not judged"),
                        (["id\tjudgment", *judged, "99999\t3"], rf"judged.tsv:{last + 1}: id: 99999 is not a row"),
                        (["id\tjudgment", *judged, judged[0]], r"judged twice \(first on line 2\)")):
        (tmp_path / "judged.tsv").write_text("\n".join(text) + "\n")
        with pytest.raises(SystemExit, match=error):
            main(scored)
