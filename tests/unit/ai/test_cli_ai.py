from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from veriot.cli.main import main


def _run(tmp_path: Path, text: str, *extra: str) -> tuple[int, list[str]]:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(text)
    code = main(["ai", "score", str(src), "--output", str(out), *extra])
    return code, out.read_text().splitlines() if out.exists() else []


def _scores(lines: list[str]) -> np.ndarray:
    return np.array([float(line.rsplit(",", 1)[1]) for line in lines[1:]])


def test_scores_good_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(10, 1, 500)
    v[300] = 40
    rows = [f"{1.7e9 + 60 * i:.0f},{x:.4f}" for i, x in enumerate(v)]
    code, lines = _run(tmp_path, "timestamp,value\n" + "\n".join(rows) + "\n")
    assert code == 0 and lines[0] == "timestamp,value,anomaly_score"
    s = _scores(lines)
    assert lines[1].startswith(rows[0]) and s.size == 500
    assert s[300] >= 0.5 and np.all((s >= 0) & (s <= 1))


@pytest.mark.parametrize("detector", ["seasonal", "robust_z", "knn", "hotelling"])
def test_bad_but_defined_inputs(tmp_path: Path, detector: str) -> None:
    text = "timestamp,value,note\n3,1.0,a\n1,,b\n2,nan,c\n2,1.0,d\n" + "".join(
        f"{i},1.0,x\n" for i in range(4, 60)
    )
    code, lines = _run(tmp_path, text, "--detector", detector)
    assert code == 0 and len(lines) == 61
    assert np.all(_scores(lines) == 0.0)  # constant series with gaps: nothing anomalous
    code, lines = _run(tmp_path, "timestamp,value\n2020-03-09 10:14:33,5\n", "--detector", detector)
    assert code == 0 and _scores(lines).tolist() == [0.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("timestamp\n1\n", "header"),
        ("timestamp,value\n", "no rows"),
        ("timestamp,value\n1,2\n2,abc\n3,4\n", "row 3, column 'value': 'abc' is not a number"),
        ("timestamp,value\nyesterday,1\n", "not a timestamp"),
        ("timestamp,value\n1,2,3\n", "row 2 has 3 cells"),
    ],
)
def test_bad_inputs_give_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    code, _ = _run(tmp_path, text)
    assert code != 0
    assert message in capsys.readouterr().err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ai", "score", str(tmp_path / "nope.csv")]) != 0
    assert "cannot read" in capsys.readouterr().err


def test_evaluate_synthetic_prints_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ai", "evaluate", "--synthetic"]) == 0
    out = capsys.readouterr().out
    assert "synthetic suite" in out and "overall" in out
