"""`mtl <command>`: the command line. Thin: it parses arguments, builds the config and calls the library.

    mtl split     write CV folds for a QC or QI file
    mtl train     train the joint model (or a single-task / TAPT baseline)
    mtl predict   score a file with a trained model or a fold ensemble, in the submission format
    mtl export    write a trained model as Hugging Face folders that serving stacks load without mtl
    mtl evaluate  F1 / precision / recall (and per language) of a submission against labelled records
    mtl translate fill `translated_query` with English translations (cached, resumable)
    mtl taxonomy  inspect a QC file's category tree: branches, names holding ", ", near-duplicate names
    mtl compare   run single / TAPT / joint (and the ablations) side by side under one log root
    mtl report    report.md + plots comparing the runs under a log root

Errors a user can fix (bad data, bad config) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mtl.errors import ConfigError, Interrupted, MtlError

log = logging.getLogger("mtl")

EPILOG_OVERRIDES = (
    "Any config value can be overridden as section.key=value, e.g. train.lr=2e-5 augment.translation=off "
    "data.train_limit=500. See mtl/config.py for every key and its meaning."
)

RESUMABLE = ("train.max_steps", "train.eval_every", "train.save_every", "train.keep_checkpoints", "log.", "eval.")
"""Config keys `--resume` may change; anything else would make the resumed run a different experiment."""


def main(argv: list[str] | None = None) -> int:
    from mtl import card

    args = parse_args(build_parser(), argv)
    card.COMMAND = ["mtl", *(sys.argv[1:] if argv is None else argv)]  # what the model cards of this run quote
    try:
        return run_command(args)
    finally:
        card.COMMAND = None


def run_command(args: argparse.Namespace) -> int:
    """Call `args.func(args)` with the logging every entry point sets up (`args.quiet`: warnings only) and its exit
    status: 2 for an error the user can fix (one line, no traceback), 130 when interrupted. benchmarks/ shares it."""
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "datasets", "torch.distributed", "accelerate", "DeepSpeed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args) or 0
    except MtlError as err:
        log.error("%s", err)
        return 130 if isinstance(err, Interrupted) else 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse in two stages so `key=value` overrides may come anywhere, before and after options: argparse fills the
    `overrides` positional with the first run of them and hands back the rest, which are overrides too when they
    look like one (parse_intermixed_args does not work on a parser with subparsers)."""
    args, extras = parser.parse_known_args(argv)
    takes_overrides = hasattr(args, "overrides")
    unknown = [a for a in extras if not (takes_overrides and is_override(a))]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extras:
        args.overrides = [*args.overrides, *extras]
    return args


def is_override(arg: str) -> bool:
    return "=" in arg and not arg.startswith("-")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtl", description=__doc__.split("\n\n")[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add in (add_split, add_train, add_predict, add_export, add_evaluate, add_translate, add_taxonomy, add_compare,
                add_report, add_plan):
        add(commands)
    return parser


def add_split(commands) -> None:
    split = commands.add_parser(
        "split", help="write CV folds for a QC or QI file",
        description="Assign a fold to every record and write the records plus a `fold` column. ca: QI grouped by "
                    "query, QC by the subtrees at depth N of the file's category tree (both stratified by language "
                    "and label); query: both tasks by query, as the test split is carved; language: whole languages "
                    "held out; random: the leaky baseline. A leakage check runs after every grouped split; the report "
                    "gives each fold's rows, groups and positive rate and warns when one group is too large for "
                    "balanced folds.",
    )
    split.add_argument("--input", required=True, help="QC or QI records (JSON lines or CSV)")
    split.add_argument("--output", required=True, help="where to write records + fold (format from the suffix)")
    split.add_argument("--task", choices=["qc", "qi"], help="default: inferred from the columns")
    split.add_argument("--strategy", choices=["ca", "random", "language", "query"], default="ca",
                       help="how folds are grouped (above); default ca")
    split.add_argument("--n-folds", type=int, default=5)
    split.add_argument("--group-levels", type=int, default=2, help="QC under ca: keep each subtree at depth N whole")
    split.add_argument("--seed", type=int, default=42)
    split.set_defaults(func=cmd_split)


def add_train(commands) -> None:
    train = commands.add_parser(
        "train", help="train the joint model or a baseline", epilog=EPILOG_OVERRIDES,
        description="Train on the configured QC/QI files. --mode mtl (default) trains one backbone with a shared "
                    "LoRA and both heads on interleaved batches; single trains one task; tapt trains the other task "
                    "first, then the target task from those weights. Writes log.root/<run>/ with TensorBoard "
                    "events, metrics and best/ and final/ model folders.",
    )
    train.add_argument("--config", help="YAML delta on the defaults (see configs/)")
    train.add_argument("--mode", choices=["mtl", "single", "tapt"])
    train.add_argument("--task", choices=["qc", "qi"], help="target task of single/tapt")
    train.add_argument("--fold", help="none (dev files), K (validate on fold K), a list 0,1,2 (one model per fold "
                                      "and an out-of-fold summary), or all")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    train.add_argument("overrides", nargs="*", metavar="key=value")
    train.set_defaults(func=cmd_train)


def add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict", help="score a file with a trained model or a fold ensemble",
        description="Write {id, prediction} JSON lines for every record of --input, in input order. Several --model "
                    "folders (repeated, or a glob such as runs/<run>/fold-*/best) are an ensemble: one backbone "
                    "load, each model's adapter and heads in turn, their probabilities averaged, at the out-of-fold "
                    "threshold of the run's cv.json. A QC and a QI file can be scored in one call: --input twice, "
                    "--output twice, in the same order.",
    )
    predict.add_argument("--model", required=True, nargs="+", action="extend",
                         help="saved model folder(s) (runs/<run>/best; several: an ensemble)")
    predict.add_argument("--input", required=True, action="append",
                         help="QC or QI records, labels not needed; give it twice for a QC and a QI file")
    predict.add_argument("--output", required=True, action="append", help="one per --input, in the same order")
    predict.add_argument("--task", choices=["qc", "qi"], help="default: inferred from the columns")
    predict.add_argument("--threshold", default="tuned",
                         help="`tuned` (saved with the model; for an ensemble, the out-of-fold threshold in the run's "
                              "cv.json) or a number")
    predict.add_argument("--average", choices=["probabilities", "logits"], default="probabilities",
                         help="what an ensemble averages (default: %(default)s)")
    predict.add_argument("--head", choices=["qc", "qi"], help="score with another task's head (transfer)")
    predict.add_argument("--with-scores", action="store_true", help="also write each pair's probability")
    predict.add_argument("--batch-size", type=int, default=64)
    predict.add_argument("--device", default="cuda" if _cuda() else "cpu")
    predict.set_defaults(func=cmd_predict)


def add_export(commands) -> None:
    export = commands.add_parser(
        "export", help="write a trained model as Hugging Face folders for serving without mtl",
        description="Write OUT/qc/ and OUT/qi/ (the tasks the model trained, or --task): each a folder that "
                    "AutoModelForSequenceClassification loads, with the LoRA merged, the task head as the "
                    "classifier, the tokenizer with mtl's pair template, preprocess.py (mtl's cleaning and text "
                    "rendering) and the decision threshold in config.json (mtl_threshold). Where the stock class "
                    "cannot compute the model (mean/first pooling, model.head_norm, an encoder) the folder carries "
                    "modeling_mtl.py and needs trust_remote_code=True. See docs/training.md, Serving.",
    )
    export.add_argument("--model", required=True, help="a saved model folder (runs/<run>/best)")
    export.add_argument("--out", required=True, help="a new or empty folder")
    export.add_argument("--task", choices=["qc", "qi"], action="append", help="export only this task (repeatable)")
    export.add_argument("--without-taxonomy", action="store_true",
                        help="export a QC head that reads taxonomy features without them: every category path is "
                             "scored as unseen, so predictions differ from mtl predict's")
    export.add_argument("--stock-only", action="store_true",
                        help="refuse a model the stock classifier cannot compute rather than export remote code")
    export.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="weights' dtype (default: %(default)s, what mtl scores with on CPU; bfloat16 halves the "
                             "folder and moves scores by its rounding)")
    export.set_defaults(func=cmd_export)


def add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="score a submission against labelled records",
        description="Positive-class F1, precision and recall, and F1 per language, of --pred against --gold, "
                    "and ROC-AUC and average precision (overall and per language) when every prediction carries its "
                    "score, printed as markdown tables. Every gold id must be predicted exactly once: a missing, unknown or "
                    "repeated id is an error naming the file and line.",
    )
    evaluate.add_argument("--pred", required=True, help="JSON lines with id and prediction, and score for ROC-AUC/AP "
                                                        "(`mtl predict --with-scores`)")
    evaluate.add_argument("--gold", required=True, help="labelled QC or QI records")
    evaluate.set_defaults(func=cmd_evaluate)


def add_translate(commands) -> None:
    translate = commands.add_parser(
        "translate", help="fill translated_query with English translations (translation augmentation)",
        description="Write --input's records to --output with translated_query filled for every record that lacks "
                    "one. English records, and queries that already look English, are their own translation. Each "
                    "distinct query is translated once and kept in a persistent cache shared by all files and "
                    "runs, so an interrupted run resumes where it stopped when run again. Texts that fail to "
                    "translate are counted and left empty, never stopping the run; a model that cannot load stops "
                    "it before anything is written.",
    )
    translate.add_argument("--input", required=True, help="QC or QI records (JSON lines or CSV)")
    translate.add_argument("--output", required=True, help="where to write the records (format from the suffix)")
    translate.add_argument("--backend", choices=["seq2seq", "llm", "column"], default="seq2seq",
                           help="seq2seq: a translation model (MADLAD-400, NLLB-200, M2M100, Marian/Opus-MT); llm: a "
                                "causal LM prompted to translate (a base one shown five examples); column: no model, "
                                "keep the translations the input has (default: %(default)s)")
    translate.add_argument("--model", help="local Hugging Face folder of the seq2seq or llm model; with --backend llm "
                                           "also embedded:gemma3-270m, the embedded backbone")
    translate.add_argument("--task", choices=["qc", "qi"], help="default: inferred from the columns")
    translate.add_argument("--batch-size", type=int, default=32,
                           help="distinct texts per model call; a failing batch is retried in halves (default: "
                                "%(default)s)")
    cache = translate.add_mutually_exclusive_group()
    cache.add_argument("--cache", help="sqlite translation cache (default: $MTL_CACHE_DIR/translations.sqlite, "
                                       "with $MTL_CACHE_DIR defaulting to ~/.cache/mtl)")
    cache.add_argument("--no-cache", action="store_true", help="keep no translations between runs")
    translate.add_argument("--device", default="cuda" if _cuda() else "cpu", help="default: cuda when available")
    translate.add_argument("--max-new-tokens", type=int,
                           help="longest translation in tokens (default: 64 for seq2seq, 32 for llm)")
    translate.add_argument("--num-beams", type=int, default=1, help="beam search width (default: 1, greedy)")
    translate.add_argument("--model-id", help="the model's name in the cache (default: folder name + a hash of its "
                                              "config.json and the generation settings)")
    translate.add_argument("--no-detect-english", action="store_true",
                           help="translate non-en queries even when every word is a common English or brand word")
    translate.set_defaults(func=cmd_translate)


def add_taxonomy(commands) -> None:
    taxonomy = commands.add_parser(
        "taxonomy", help="inspect a QC file's category tree",
        description="Build the category tree of FILE's category_path values and print a markdown report: rows, "
                    "distinct paths, nodes per depth and path depths; the top-level branches with their paths, "
                    "nodes, rows and positive rate (when every record has a label); paths whose level names contain "
                    "', ' (one level, not two); near-duplicate level names (equal up to case, whitespace, "
                    "full-width forms or a trailing parenthesised note); and paths that are prefixes of other "
                    "paths. Rows whose category_path has no level are counted and left out.",
    )
    taxonomy.add_argument("file", metavar="FILE", help="QC records (JSON lines or CSV); labels optional")
    taxonomy.add_argument("--json", metavar="OUT", help="also write the same facts as JSON to OUT")
    taxonomy.add_argument("--examples", type=int, default=5, metavar="N",
                          help="examples per list (default: %(default)s)")
    taxonomy.set_defaults(func=cmd_taxonomy)


def add_compare(commands) -> None:
    compare = commands.add_parser(
        "compare", help="run single, TAPT and joint models (and the ablations) side by side",
        epilog="key=value overrides apply to every run (data, backbone, batch, seed). The budget is train.max_steps: "
               "the joint model's steps; per-task models get half, each TAPT stage a quarter, the fine-tunes an "
               "eighth. " + EPILOG_OVERRIDES,
        description="Run the comparison grid one run after another under --root: main = single QC, single QI, TAPT "
                    "QI->QC, TAPT QC->QI, joint, joint + short per-task fine-tunes, and cross-task transfer; "
                    "ablations = translation augmentation off, taxonomy features off, task sampling, CA vs random "
                    "split, held-out languages. Same seed, data, folds and budget rule for every run. A failing run "
                    "leaves a FAILED file and the grid goes on; complete runs are skipped, so running the same "
                    "command again continues an interrupted grid. Then `mtl report ROOT`.",
    )
    compare.add_argument("--root", default="runs/compare", help="log root of the grid (default: %(default)s)")
    compare.add_argument("--grid", choices=["main", "ablations", "all"], default="main")
    compare.add_argument("--config", help="YAML delta on the defaults, the base of every run")
    compare.add_argument("--only", action="append", default=[], metavar="RUN", help="run just this run (repeatable)")
    compare.add_argument("--dry-run", action="store_true", help="print the runs and their overrides, run nothing")
    compare.add_argument("--lock", metavar="FILE", help="hold an exclusive flock on FILE during each run (shared "
                                                     "machines: other jobs taking it never overlap a run)")
    compare.add_argument("--fold", default="none", metavar="K",
                         help="validate every run on CV fold K of the training files instead of the dev files "
                              "(no dev files needed; the ablations that set their own fold keep it); a list "
                              "K1,K2,... or `all`: the grid once per fold, under ROOT/fold-K/ (the report gives "
                              "mean ± std over folds)")
    compare.add_argument("--seeds", default="", metavar="S1,S2,...",
                         help="run the whole grid once per train.seed, under ROOT/seed-S/ (the report gives mean ± "
                              "std over them); with one --fold at most")
    compare.add_argument("--invoked-as", default="", help="the command line to record in grid.json (scripts set it)")
    compare.add_argument("overrides", nargs="*", metavar="key=value")
    compare.set_defaults(func=cmd_compare)


def add_report(commands) -> None:
    report = commands.add_parser(
        "report", help="write report.md and plots comparing the runs under a log root",
        description="Read every run folder under RUN_ROOT (metrics.json, TensorBoard event files, and grid.json "
                    "when `mtl compare` made it) and write report.md: best F1 and ROC-AUC QC / QI per run, the "
                    "systems that serve both tasks (F1 and AUC), per-language and zero-shot-language F1 and AUC, "
                    "ablation deltas, steps, wall time, tokens/s, parameters and model memory; plus PNG plots (F1 "
                    "curves per task, F1 by language) and a TensorBoard custom-scalar layout at RUN_ROOT. Failed or "
                    "missing runs are rows saying so. A root of per-seed or per-fold grids (ROOT/seed-S/, "
                    "ROOT/fold-K/) gets each grid's report and, at the root, mean ± std over them.",
    )
    report.add_argument("root", metavar="RUN_ROOT", help="log root holding the runs (e.g. runs/compare)")
    report.add_argument("--out", help="folder for report.md and the PNGs (default: RUN_ROOT)")
    report.set_defaults(func=cmd_report)


def add_plan(commands) -> None:
    plan = commands.add_parser(
        "plan", help="per-GPU memory of a LoRA run and the largest micro-batch that fits", epilog=EPILOG_OVERRIDES,
        description="Estimate, before anything loads, what one GPU holds for a training run of the config: frozen "
                    "weights, adapters and heads, their gradients and optimizer states (trainable parameters only), "
                    "activations at micro-batch x data.max_length with or without gradient checkpointing, under DDP, "
                    "ZeRO-2 or ZeRO-3; and the largest micro-batch that fits. See mtl/plan.py for the model.",
    )
    plan.add_argument("--config", help="YAML delta on the defaults (e.g. configs/gemma3_12b.yaml)")
    plan.add_argument("--shape", help="a Hugging Face config.json with the backbone's sizes (default: the "
                                      "backbone's own; configs/shapes/ has Gemma-3 1B and 12B)")
    plan.add_argument("--gpus", type=int, default=1)
    plan.add_argument("--gpu-memory", type=float, default=80.0, metavar="GIB", help="memory per GPU (default 80)")
    plan.add_argument("--overhead", type=float, default=2.0, metavar="GIB",
                      help="CUDA context, workspaces, fragmentation (default 2)")
    plan.add_argument("--zero", type=int, choices=[0, 2, 3], help="default: read from train.deepspeed")
    plan.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    plan.add_argument("overrides", nargs="*", metavar="key=value")
    plan.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    import json

    from mtl.config import load_config
    from mtl.io import atomic_write_text
    from mtl.plan import format_plan, plan, shape_of

    from mtl.io import check_output_path

    if args.json:
        check_output_path(args.json, "--json", inputs=[p for p in (args.shape, args.config) if p])
    cfg = load_config(args.config, args.overrides)
    result = plan(cfg, shape_of(cfg, args.shape), args.gpus, args.gpu_memory, args.overhead, args.zero)
    print(format_plan(result))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")
    return 0


def cmd_split(args) -> int:
    from mtl.config import check_seed
    from mtl.data.records import read_records, write_records
    from mtl.io import check_output_path
    from mtl.splits import assign_folds, format_split_report, plural, split_groups, split_report

    if args.n_folds < 2:
        raise ConfigError(f"--n-folds must be at least 2, got {args.n_folds}")
    if args.group_levels < 1:
        raise ConfigError(f"--group-levels must be at least 1, got {args.group_levels}")
    check_seed("--seed", args.seed)
    check_output_path(args.output, "--output", inputs=[args.input])
    records, report = read_records(args.input, args.task, require_label=True)
    task = records.attrs["task"]
    folds = assign_folds(records, task, args.strategy, args.n_folds, args.seed, args.group_levels)
    out = records.copy()
    out["fold"] = folds
    try:
        write_records(out, args.output, columns=("fold",))
    except OSError as err:
        raise MtlError(f"--output {args.output}: cannot write: {err.strerror or err}") from None
    split = split_report(records, task, args.strategy, folds, args.group_levels)
    if split["warning"]:
        log.warning(split["warning"])
    print(f"{report.summary()}\n{task.upper()} {args.strategy} split into {args.n_folds} folds -> {args.output}")
    print(format_split_report(split))
    if args.strategy == "random":
        print("leakage check: not run, the random split is leaky on purpose")
    elif args.strategy == "query":  # the report counts category subtrees for QC; the check was by query
        print(f"leakage check passed: each of {split_groups(records, task, 'query').nunique()} queries is in exactly "
              f"one of {args.n_folds} folds")
    else:
        print(f"leakage check passed: each of {split['groups']} {plural(split['unit'])} is in exactly one of "
              f"{args.n_folds} folds")
    return 0


def flag_overrides(mode: str | None, task: str | None, fold: str | None) -> list[str]:
    """`mtl train`'s --mode/--task/--fold as the config overrides they stand for (after the user's own, so they win)."""
    flags = (("train.mode", mode), ("train.task", task), ("cv.fold", fold))
    return [f"{key}={value}" for key, value in flags if value is not None]


def cmd_train(args) -> int:
    from mtl import stages
    from mtl.config import load_config

    overrides = [*args.overrides, *flag_overrides(args.mode, args.task, args.fold)]
    if args.resume:
        cfg = resume_config(Path(args.resume), args.config, overrides)
    else:
        cfg = load_config(args.config, overrides)
        if not cfg.log.run_name:
            cfg.log.run_name = default_run_name(cfg)
    summary = stages.run(cfg, resume=bool(args.resume))
    print(summary_table(summary))
    return 0


def cmd_predict(args) -> int:
    from mtl.predict import predict_files

    threshold = args.threshold
    if threshold != "tuned":
        try:
            threshold = float(threshold)
        except ValueError:
            raise ConfigError(f"--threshold must be 'tuned' or a number in [0, 1], got {threshold!r}") from None
    summaries = predict_files(args.model, args.input, args.output, args.task, threshold, args.head, args.with_scores,
                              args.batch_size, args.device, args.average)
    for output, s in zip(args.output, summaries):
        models = f"{s['models']} models ({s['average']} averaged)" if s["models"] > 1 else "1 model"
        print(f"{output}: {s['rows']} {s['task'].upper()} rows ({s['defaulted_to_0']} unreadable, predicted 0), "
              f"{models}, threshold {s['threshold']:.3f} from {s['threshold_from']}, {s['positive_rate']:.1%} "
              "predicted relevant")
    return 0


def cmd_export(args) -> int:
    from mtl.export import export_model

    for s in export_model(args.model, args.out, args.task, args.without_taxonomy, args.stock_only, args.dtype):
        kind = ("stock (head bias folded into the threshold)" if s["kind"] == "stock"
                else f"remote code, trust_remote_code=True ({', '.join(s['reasons'])})")
        print(f"{s['folder']}: {s['task'].upper()}, {kind}, mtl_threshold {s['mtl_threshold']:.4f}"
              + (", without taxonomy features" if s["mtl_without_taxonomy"] else ""))
    return 0


def cmd_evaluate(args) -> int:
    from mtl.predict import evaluate_files

    _, table = evaluate_files(args.pred, args.gold)
    print(table)
    return 0


def cmd_translate(args) -> int:
    from mtl.translate import translate_file

    s = translate_file(args.input, args.output, args.backend, args.model, task=args.task, batch_size=args.batch_size,
                       cache_path=":memory:" if args.no_cache else args.cache, device=args.device,
                       max_new_tokens=args.max_new_tokens, num_beams=args.num_beams, model_id=args.model_id,
                       detect_english=not args.no_detect_english, progress=not args.quiet)
    if s["model_id"] == "column":
        work = (f"{s['to_translate']} rows ({s['distinct_texts']} distinct texts) have no translation; the column "
                f"backend translates nothing")
    else:
        work = (f"{s['to_translate']} rows to translate carried {s['distinct_texts']} distinct texts: "
                f"{s['cache_hits']} came from the cache and {s['translated']} were translated by {s['model_id']} in "
                f"{s['model_calls']} model calls; {s['failed_texts']} texts failed, leaving {s['failed_rows']} rows "
                f"without a translation")
    print(f"{s['output']}: {s['rows']} {s['task'].upper()} rows. {s['already_translated']} were already translated, "
          f"{s['english']} English rows and {s['looks_english']} English-looking queries passed through as their "
          f"own translation. {work}. {s['untranslated_rows']} rows have an empty translated_query; "
          f"{s['seconds']:.1f} s.")
    return 0


def cmd_taxonomy(args) -> int:
    import json

    from mtl.data.records import read_records
    from mtl.errors import DataError
    from mtl.io import atomic_write_text, check_output_path
    from mtl.taxonomy import Taxonomy, format_inspection, inspect_tree

    if args.examples < 0:
        raise ConfigError(f"--examples must be at least 0, got {args.examples}")
    if args.json:
        check_output_path(args.json, "--json", inputs=[args.file])
    records, _ = read_records(args.file)
    if records.attrs["task"] != "qc":
        raise DataError(args.file, None, None, "a QI file (item_title, no category_path): mtl taxonomy reads QC "
                                               "records")
    kept = records[records["category_path"].map(_has_level)]
    if kept.empty:
        raise DataError(args.file, None, "category_path", "no record has a category level")
    labelled = "label" in kept and kept["label"].notna().all()
    if "label" in kept and not labelled:
        log.warning("%s: some records have no label, so the report gives no positive rates", args.file)
    taxonomy = Taxonomy.from_paths(kept["category_path"], kept["label"].astype(int) if labelled else None)
    facts = {"file": str(args.file), "rows_without_category": len(records) - len(kept),
             **inspect_tree(taxonomy, args.examples)}
    print(format_inspection(facts, f"Category tree of {args.file}"), end="")
    if args.json:
        atomic_write_text(args.json, json.dumps(facts, ensure_ascii=False, indent=2) + "\n")
        log.info("wrote %s", args.json)
    return 0


def cmd_compare(args) -> int:
    from mtl import experiments

    seeds = parse_seeds(args.seeds)
    fold = str(args.fold)
    specs = experiments.plan(args.grid, args.overrides, args.config, args.only, fold)
    folds = experiments.grid_folds(fold, args.config, args.overrides)
    if seeds and any(o.partition("=")[0].strip() == "train.seed" for o in args.overrides):
        raise ConfigError("--seeds sets train.seed for each grid: drop the train.seed override")
    if seeds and folds:
        raise ConfigError(f"--seeds with several folds (--fold {fold}): give one fold, or run the folds' grids "
                          "without --seeds")
    if args.dry_run:
        for spec in specs:
            source = f" (from {spec.source})" if spec.source else ""
            print(f"{spec.name:30s} {spec.kind:9s} {' '.join(spec.overrides)}{source}")
        if folds:
            print(f"each once per fold ({', '.join(folds)}) under {args.root}/fold-K/ with cv.fold=K; a run that "
                  f"names its own cv.fold only in fold-{folds[0]}/")
        return 0
    command = args.invoked_as or " ".join(
        ["mtl compare", f"--root {args.root}", f"--grid {args.grid}", *(f"--only {n}" for n in args.only),
         *([f"--config {args.config}"] if args.config else []), *([f"--lock {args.lock}"] if args.lock else []),
         *([f"--fold {fold}"] if fold != "none" else []), *([f"--seeds {args.seeds}"] if seeds else []),
         *args.overrides])
    if seeds:
        statuses = experiments.run_seeds(specs, args.root, seeds, args.overrides, args.config, command, args.lock, fold)
    elif folds:
        statuses = experiments.run_folds(specs, args.root, folds, args.overrides, args.config, command, args.lock)
    else:
        statuses = experiments.run_grid(specs, args.root, args.overrides, args.config, command, args.lock, fold)
    for name, status in statuses.items():
        print(f"{name:30s} {status}")
    return 1 if any(s.startswith("FAILED") for s in statuses.values()) else 0


def parse_seeds(text: str) -> list[int]:
    """`1,2,3` -> [1, 2, 3]: distinct seeds in the range `train.seed` accepts."""
    if not text.strip():
        return []
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated whole numbers, got {text!r}") from None
    if len(set(seeds)) != len(seeds) or any(not 0 <= s < 2**32 for s in seeds):
        raise ConfigError(f"--seeds must be distinct whole numbers in [0, 2^32), got {text!r}")
    return seeds


def cmd_report(args) -> int:
    from mtl.report import write_report

    print(write_report(args.root, args.out))
    return 0


def resume_config(run_dir: Path, config_file: str | None, overrides: list[str]):
    """The saved config of the run plus overrides that do not change the experiment."""
    from mtl.config import load_config, to_dict
    from mtl.config import flatten

    saved_file = run_dir / "config.yaml"
    if not saved_file.is_file():
        raise ConfigError(f"--resume {run_dir}: no config.yaml there, not a run folder")
    if config_file:
        raise ConfigError("--resume uses the run's saved config; drop --config")
    saved = load_config(saved_file)
    cfg = load_config(saved_file, overrides)
    before, after = flatten(to_dict(saved)), flatten(to_dict(cfg))
    changed = [k for k in after if after[k] != before[k] and not k.startswith(RESUMABLE)]
    if changed:
        raise ConfigError(f"--resume {run_dir}: cannot change {', '.join(changed)} (saved: "
                          + ", ".join(f"{k}={before[k]!r}" for k in changed) + "); start a new run instead")
    cfg.log.root, cfg.log.run_name = str(run_dir.parent), run_dir.name
    return cfg


def default_run_name(cfg) -> str:
    import time

    name = cfg.train.mode + (f"-{cfg.train.task}" if cfg.train.task else "")
    if cfg.cv.fold != "none":
        name += f"-fold{cfg.cv.fold.replace(',', '+')}"
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def summary_table(summary: dict) -> str:
    from mtl.metrics import format_language_table, format_table

    if "cv" in summary:
        return "\n".join(f"{k}: {v['mean']:.4f} ± {v['std']:.4f}" for k, v in summary["cv"].items())
    reports, test = summary["best"]["reports"], summary.get("test", {}).get("reports", {})
    text = (f"best step {summary['best_step']} of {summary['steps']} (test: held out, scored once at the threshold "
            f"tuned on validation; the other columns are validation)\n\n{format_table(reports, test)}\n\n"
            f"Validation by language (F1 at threshold 0.5, ROC-AUC):\n{format_language_table(reports)}")
    if test:
        text += f"\n\nTest by language (F1 at threshold 0.5, ROC-AUC):\n{format_language_table(test)}"
    return text


def _has_level(path: str) -> bool:
    from mtl.taxonomy import parse_path

    try:
        parse_path(path)
    except ValueError:
        return False
    return True


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
