"""The compiled contracts. Sources ship in veriot/chain/contracts/*.vy (the one place they
live); they are compiled with the vyper package and cached by source hash and vyper version,
so a compile happens once per machine and version."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from veriot.core.errors import ChainError

REGISTRY = "DeviceRegistry"
LOG_ANCHOR = "LogAnchor"
CONTRACTS = (REGISTRY, LOG_ANCHOR)

_lock = threading.Lock()
_memo: dict[str, Artifact] = {}


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    source_hash: str


def source(name: str) -> str:
    """The Vyper source of contract `name` (one of CONTRACTS)."""
    if name not in CONTRACTS:
        raise ChainError(f"unknown contract {name!r}; want one of {', '.join(CONTRACTS)}")
    return (resources.files("veriot.chain") / "contracts" / f"{name}.vy").read_text()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "veriot" / "contracts"


def load(name: str, cache_dir: Path | None = None) -> Artifact:
    """The ABI and deployment bytecode of contract `name`, compiled on first use."""
    import vyper

    text = source(name)
    key = hashlib.sha256(f"{vyper.__version__}\n{text}".encode()).hexdigest()
    with _lock:
        if key in _memo:
            return _memo[key]
        directory = cache_dir or default_cache_dir()
        path = directory / f"{name}-{key[:16]}.json"
        artifact = _read_cached(path, name, key)
        if artifact is None:
            try:
                out = vyper.compile_code(text, output_formats=["abi", "bytecode"])
            except Exception as exc:  # vyper raises many unrelated types
                raise ChainError(f"vyper {vyper.__version__} cannot compile {name}: {exc}") from exc
            artifact = Artifact(name, out["abi"], bytes.fromhex(out["bytecode"][2:]), key)
            _write_cached(path, artifact)
        _memo[key] = artifact
        return artifact


def _read_cached(path: Path, name: str, key: str) -> Artifact | None:
    try:
        data = json.loads(path.read_text())
        if data["source_hash"] != key:
            return None
        return Artifact(name, data["abi"], bytes.fromhex(data["bytecode"]), key)
    except (OSError, ValueError, KeyError):
        return None  # absent or torn: compile again


def _write_cached(path: Path, artifact: Artifact) -> None:
    payload = {
        "abi": artifact.abi,
        "bytecode": artifact.bytecode.hex(),
        "source_hash": artifact.source_hash,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # write-then-rename so a concurrent reader never sees half a file
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs a compile next time
