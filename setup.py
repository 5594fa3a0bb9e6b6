"""Builds veriot's hot modules into C extensions with mypyc; everything else is pyproject.toml.

The modules in COMPILED are ordinary, mypy-strict Python. mypyc compiles the same source
to C (native ints, floats and attribute access; direct calls between compiled functions),
which takes several times less CPU on the per-reading paths of ingest: decoding and
hashing readings, sequencing, storing, and scoring them. Nothing else changes: with
VERIOT_PURE_PYTHON=1 in the environment, where no C compiler or no mypy is found, or where
mypyc cannot build them (a plain `pip install .` builds in an isolated environment without
veriot's dependencies, whose types mypyc needs), veriot installs and runs as plain Python,
with the same results.

An editable install (`pip install -e .`, as `make` does) puts the built extensions next to
their sources, where they take precedence over the .py files: after editing one of these
modules, install again (`make` does that when a listed source is newer than its stamp).

Beside them, two hand-written C extensions, both optional, with the same results
without them:
- veriot/ledger/_sha256.c hashes runs of messages with OpenSSL's SHA-256 in one call
  (see veriot/ledger/digests.py); it is built where OpenSSL's headers are found, and
  without it veriot hashes through hashlib;
- veriot/core/_canonical.c builds the canonical messages of a run of one device's
  readings in one call (see veriot.core.canonical.reading_messages); without it they
  are built one by one.

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

from setuptools import Extension, setup

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

NATIVE = [
    Extension(
        "veriot.ledger._sha256",
        ["veriot/ledger/_sha256.c"],
        libraries=["crypto"],
        optional=True,  # no OpenSSL headers: veriot.ledger.digests falls back to hashlib
    ),
    Extension(
        "veriot.core._canonical",
        ["veriot/core/_canonical.c"],
        optional=True,  # not built: veriot.core.canonical builds messages one by one
    ),
]
"""Hand-written C extensions (the Makefile rebuilds when a veriot/*/*.c source changes)."""

GROUP = "veriot_compiled"
"""The name of the shared library of the compiled modules, at the top of the tree."""


def _remove_stale_builds(keep: list[str], native: bool) -> None:
    """Deletes built extensions of modules not in `keep` (and of the C extensions unless
    `native`): left in place (an editable install keeps them beside the source), one
    would shadow its module's .py file, or keep a pure Python install from being one."""
    here = Path(__file__).parent
    wanted = {here / path for path in keep}
    sources = {here / source for ext in NATIVE for source in ext.sources}
    for built in (here / "veriot").rglob("*.so"):
        stem = built.name.split(".")[0]
        if native and built.with_name(stem + ".c") in sources:
            continue  # rebuilt in place by this install
        if built.with_name(stem + ".py") not in wanted:
            built.unlink()
    if not keep:
        for shared in here.glob(f"{GROUP}__mypyc.*"):
            shared.unlink()


def _extensions() -> list[Extension]:
    reason = ""
    if os.environ.get("VERIOT_PURE_PYTHON"):
        reason = "VERIOT_PURE_PYTHON is set"
    elif shutil.which(os.environ.get("CC", "cc")) is None:
        reason = "no C compiler found"
    else:
        try:
            from mypyc.build import mypycify

            # mypyc type-checks the modules with the project's mypy settings (strict), so
            # it needs veriot's dependencies installed beside it: `make` installs them
            # first, then builds with --no-build-isolation.
            extensions = list(mypycify(COMPILED, opt_level="3", group_name=GROUP))
        except (Exception, SystemExit) as exc:  # mypyc exits on a type error
            reason = f"mypyc could not build them ({type(exc).__name__}: {exc})"
        else:
            _remove_stale_builds(COMPILED, native=True)
            return [*extensions, *NATIVE]
        # mypyc is missing or failed, but a C compiler is here: the C extensions alone.
        print(f"veriot: installing the Python modules uncompiled, {reason}", file=sys.stderr)
        _remove_stale_builds([], native=True)
        return list(NATIVE)
    print(f"veriot: installing pure Python, {reason}", file=sys.stderr)
    _remove_stale_builds([], native=False)
    return []


setup(ext_modules=_extensions())
