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
"""

from __future__ import annotations

import os
import shutil
import sys

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
"""Modules built with mypyc. Keep this list in step with the Makefile's COMPILED."""


def _extensions() -> list[object]:
    if os.environ.get("VERIOT_PURE_PYTHON") or shutil.which(os.environ.get("CC", "cc")) is None:
        print("veriot: building without mypyc (pure Python)", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    # Third-party packages are not installed in pip's isolated build environment; their
    # values are plain Python objects to the compiled code either way.
    return list(
        mypycify(
            ["--ignore-missing-imports", *COMPILED], opt_level="3", group_name="veriot_compiled"
        )
    )


setup(ext_modules=_extensions())
