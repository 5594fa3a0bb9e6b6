"""The modules setup.py compiles with mypyc: in use, current, and equal to their source.

The compiled extensions are built from the same source as the .py files, but they are
what the service runs, so each is checked against a copy of its own source loaded as
plain Python: same results, bit for bit, on the per-reading paths.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

from veriot.core.types import Reading, Record

ROOT = Path(__file__).resolve().parents[2]


def _setup_names() -> dict[str, object]:
    source = (ROOT / "setup.py").read_text()
    # setup.py calls setup() at import; read its lists without running it.
    tree = compile(source.split("\ndef ")[0], str(ROOT / "setup.py"), "exec")
    names: dict[str, object] = {}
    exec(tree, names)
    return names


_SETUP = _setup_names()
COMPILED = [str(path) for path in _SETUP["COMPILED"]]  # type: ignore[attr-defined]
NATIVE = {ext.name: ext.sources for ext in _SETUP["NATIVE"]}  # type: ignore[attr-defined]
"""The hand-written C extensions: module name -> sources."""


def _module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _pure(path: str) -> ModuleType:
    """The module's source loaded as plain Python under a private name."""
    name = "_pure_" + _module_name(path).replace(".", "_")
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def test_every_listed_module_exists() -> None:
    assert COMPILED
    for path in COMPILED:
        assert (ROOT / path).is_file(), f"setup.py lists {path}, which does not exist"


@pytest.mark.skipif(
    bool(os.environ.get("VERIOT_PURE_PYTHON")), reason="installed as pure Python on purpose"
)
def test_every_listed_module_runs_compiled_and_current() -> None:
    for path in COMPILED:
        module = importlib.import_module(_module_name(path))
        built = Path(str(module.__file__))
        assert built.suffix == ".so", (
            f"{_module_name(path)} runs from {built.name}, not its mypyc build: run `make setup`"
            " (or install with VERIOT_PURE_PYTHON=1 to run pure Python on purpose)"
        )
        assert built.stat().st_mtime >= (ROOT / path).stat().st_mtime, (
            f"{built.name} is older than {path}: its edits are not in force until `make setup`"
        )


def test_no_build_is_left_of_a_module_not_listed() -> None:
    # setup.py removes them; one left behind would shadow its module's newer source
    listed = {ROOT / path for path in COMPILED}
    native = {ROOT / source for sources in NATIVE.values() for source in sources}
    for built in (ROOT / "veriot").rglob("*.so"):
        stem = built.name.split(".")[0]
        if built.with_name(stem + ".c") in native:
            continue
        source = built.with_name(stem + ".py")
        assert source in listed, f"{built} is built, but setup.py does not list {source.name}"


@pytest.mark.skipif(
    bool(os.environ.get("VERIOT_PURE_PYTHON")), reason="installed as pure Python on purpose"
)
def test_every_c_extension_is_built_and_current() -> None:
    # Optional at install (without them the same work is done in Python, slower), but
    # where veriot is developed and tested they are built, so that the tests exercise them.
    for name, sources in NATIVE.items():
        module = importlib.import_module(name)
        built = Path(str(module.__file__))
        assert built.suffix == ".so", f"{name} is not built: run `make setup`"
        for source in sources:
            assert built.stat().st_mtime >= (ROOT / source).stat().st_mtime, (
                f"{built.name} is older than {source}: run `make setup`"
            )
    from veriot.core import canonical
    from veriot.ledger import digests

    assert digests.NATIVE
    assert canonical.NATIVE_MESSAGES


def _series(n: int, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    times = [1.7e9 + 60.0 * i for i in range(n)]
    values = [20.0 + rng.gauss(0.0, 1.0) + (12.0 if i % 97 == 50 else 0.0) for i in range(n)]
    values[n // 3] = float("nan")
    return times, values


def test_seasonal_detector_equals_its_source_bit_for_bit() -> None:
    from veriot.ai import detectors

    pure = _pure("veriot/ai/detectors.py")
    times, values = _series(3000, seed=7)
    compiled, reference = detectors.SeasonalEW(), pure.SeasonalEW()
    got: list[float] = []
    want: list[float] = []
    for start in range(0, len(values), 100):
        got += compiled.step_many(values[start : start + 100], times[start : start + 100])
        want += reference.step_many(values[start : start + 100], times[start : start + 100])
    assert [s.hex() for s in got] == [s.hex() for s in want]
    assert max(got) > 0.5  # the planted spikes are found: the comparison is not of zeros


def test_canonical_messages_and_log_tree_equal_their_source() -> None:
    from veriot.core import canonical
    from veriot.ledger import compact

    pure_canonical = _pure("veriot/core/canonical.py")
    pure_compact = _pure("veriot/ledger/compact.py")
    rng = random.Random(3)
    readings = [
        Reading(
            "did:key:z6Mk" + "ab" * 20,
            seq,
            (Record("temperature", rng.uniform(-40, 40), 1.7e9 + seq, "Cel"),),
        )
        for seq in range(1, 300)
    ]
    messages = [canonical.reading_message(r) for r in readings]
    assert messages == [pure_canonical.reading_message(r) for r in readings]
    leaves = [bytes.fromhex(canonical.reading_id(m)) for m in messages]  # 32 bytes each
    tree, reference = compact.LogTree(), pure_compact.LogTree()
    for start in range(0, len(leaves), 37):
        tree.append_leaf_hashes(leaves[start : start + 37])
        reference.append_leaf_hashes(leaves[start : start + 37])
        assert tree.root() == reference.root()
