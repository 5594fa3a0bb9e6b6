"""`veriot ai`: score a CSV with a detector, and print the evaluation report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from veriot.ai.base import MultivariateDetector
from veriot.ai.evaluate import evaluate_skab, evaluate_synthetic
from veriot.ai.registry import (
    DEFAULT_DETECTOR,
    DEFAULT_MULTIVARIATE,
    detector_names,
    make_detector,
)
from veriot.ai.skab import parse_skab
from veriot.ai.synthetic import synthetic_suite
from veriot.ai.tables import parse_table, time_order
from veriot.cli import ai_recheck
from veriot.cli.common import CliError
from veriot.core.errors import InputError

DEFAULT_SKAB = Path("../shared/data/skab")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ai = sub.add_parser("ai", help="anomaly detection tools")
    ai_sub = ai.add_subparsers(dest="ai_command", metavar="COMMAND", required=True)

    score = ai_sub.add_parser("score", help="add an anomaly_score column to a CSV")
    score.add_argument("input", type=Path, help="CSV: timestamp first, then value columns")
    score.add_argument("--detector", default=DEFAULT_DETECTOR, choices=detector_names())
    score.add_argument("--output", type=Path, help="output CSV (default: standard output)")
    score.set_defaults(func=cmd_score)

    ev = ai_sub.add_parser("evaluate", help="print the NAB and F1 evaluation report")
    ev.add_argument(
        "--skab",
        type=Path,
        nargs="?",
        const=DEFAULT_SKAB,
        help=f"SKAB directory (default when given bare: {DEFAULT_SKAB})",
    )
    ev.add_argument("--synthetic", action="store_true", help="the synthetic suite")
    ev.add_argument(
        "--detector",
        choices=detector_names(),
        help="one detector (default: the defaults of each data set)",
    )
    ev.set_defaults(func=cmd_evaluate)

    ai_recheck.register(ai_sub)


def cmd_score(args: argparse.Namespace) -> int:
    try:
        text = args.input.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.input}: {exc}") from exc
    try:
        table = parse_table(text)
    except InputError as exc:
        raise CliError(f"{args.input}: {exc}") from exc
    for note in table.notes:
        print(f"veriot: note: {note}", file=sys.stderr)
    order = time_order(table.times)
    detector = make_detector(args.detector)
    raw = detector.score_series(table.times[order], table.values[order])
    per_row = raw if raw.ndim == 1 else raw.max(axis=1)
    scores = np.empty_like(per_row)
    scores[order] = np.clip(np.nan_to_num(per_row, nan=0.0), 0.0, 1.0)
    sep = ";" if table.header and ";" in text.partition("\n")[0] else ","
    cells = np.char.mod("%.6f", scores).tolist()
    out = (
        "\n".join(
            [text.partition("\n")[0].rstrip("\r") + sep + "anomaly_score"]
            + [line.rstrip("\r") + sep + c for line, c in zip(table.lines, cells, strict=True)]
        )
        + "\n"
    )
    if args.output is None:
        sys.stdout.write(out)
    else:
        try:
            args.output.write_text(out, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write {args.output}: {exc}") from exc
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.skab is None and not args.synthetic:
        args.synthetic, args.skab = True, DEFAULT_SKAB
    reports = []
    if args.synthetic:
        detector = make_detector(args.detector or DEFAULT_DETECTOR)
        if isinstance(detector, MultivariateDetector):
            raise CliError("the synthetic suite is univariate; pick a univariate detector")
        reports.append(evaluate_synthetic(detector, synthetic_suite()).format())
    if args.skab is not None:
        root: Path = args.skab
        files = sorted(p for p in root.glob("*/*.csv") if p.parent.name != "anomaly-free")
        if not files:
            raise CliError(f"no SKAB files under {root} (want {root}/valve1/0.csv and so on)")
        try:
            tables = [parse_skab(p.read_text(), p.parent.name, p.name) for p in files]
        except (OSError, InputError) as exc:
            raise CliError(str(exc)) from exc
        reports.append(
            evaluate_skab(make_detector(args.detector or DEFAULT_MULTIVARIATE), tables).format()
        )
    print("\n\n".join(reports))
    return 0
