"""Builds veriot's hot modules into C extensions with mypyc; everything else is pyproject.toml.

The modules in COMPILED are ordinary, mypy-strict Python. mypyc compiles the same source
to C (native ints, floats and attribute access; direct calls between compiled functions),
which takes several times less CPU on the per-reading paths of ingest: decoding and
hashing readings, sequencing, storing, and scoring them. Nothing else changes: with
VERIOT_PURE_PYTHON=1 in the environment, or where no C compiler is found, veriot installs
and runs as plain Python, with the same results.

An editable install (`pip install -e .`, as `make` does) puts the built extensions next to
their sources, where they take precedence over the .py files: after editing one of these
modules, install again (`make` does that when a listed source is newer than its stamp).

Two limits of mypyc shape these modules: it drops the class keywords of msgspec Structs
(frozen, gc, kw_only, ...), so a compiled module imports its Structs from a module beside
it (core/wire_shapes.py, ingest/checked.py); and an attribute named `_thread` becomes the
C keyword `__thread`, which does not compile. A class that users or tests subclass is
marked `@mypyc_attr(allow_interpreted_subclasses=True)`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from setuptools import setup

COMPILED = [
    "veriot/ai/alerts.py",
    "veriot/ai/detectors.py",
    "veriot/ai/trust.py",
    "veriot/core/canonical.py",
    "veriot/core/wire.py",
    "veriot/ingest/sequencer.py",
    "veriot/ingest/verify.py",
    "veriot/ledger/batch.py",
    "veriot/ledger/compact.py",
    "veriot/ledger/hashing.py",
    "veriot/ledger/segment.py",
    "veriot/storage/codec.py",
    "veriot/storage/sql.py",
    "veriot/storage/tiles.py",
]
"""Modules built with mypyc (the Makefile reads this list)."""

GROUP = "veriot_compiled"
"""The name of the shared library of the compiled modules, at the top of the tree."""


def _remove_stale_builds(keep: list[str]) -> None:
    """Deletes built extensions of modules not in `keep`: left in place (an editable
    install keeps them beside the source), one would shadow its module's .py file."""
    here = Path(__file__).parent
    wanted = {here / path for path in keep}
    for built in (here / "veriot").rglob("*.so"):
        if built.with_name(built.name.split(".")[0] + ".py") not in wanted:
            built.unlink()
    if not keep:
        for shared in here.glob(f"{GROUP}__mypyc.*"):
            shared.unlink()


def _extensions() -> list[object]:
    if os.environ.get("VERIOT_PURE_PYTHON") or shutil.which(os.environ.get("CC", "cc")) is None:
        print("veriot: building without mypyc (pure Python)", file=sys.stderr)
        _remove_stale_builds([])
        return []
    _remove_stale_builds(COMPILED)
    from mypyc.build import mypycify

    # Third-party packages are not installed in pip's isolated build environment; their
    # values are plain Python objects to the compiled code either way.
    return list(mypycify(["--ignore-missing-imports", *COMPILED], opt_level="3", group_name=GROUP))


setup(ext_modules=_extensions())
