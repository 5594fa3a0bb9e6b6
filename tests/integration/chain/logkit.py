"""A small in-memory veriot log for chain tests: signed readings, a Merkle tree, signed
checkpoints and proof bundles, built from the real ledger code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from veriot.core import canonical
from veriot.core.types import Checkpoint, NodeId, Reading, Record, SignedReading
from veriot.identity.did import did_from_public_key
from veriot.identity.signatures import public_key_from_seed, sign
from veriot.ledger.bundle import ProofBundle
from veriot.ledger.checkpoint import log_public_key, sign_checkpoint
from veriot.ledger.compact import LogTree
from veriot.ledger.hashing import leaf_hash
from veriot.ledger.proof import consistency_proof, inclusion_proof
from veriot.ports import Anchor

LOG_SEED = b"\x07" * 32


@dataclass
class SimDevice:
    seed: bytes

    @property
    def public_key(self) -> bytes:
        return public_key_from_seed(self.seed)

    @property
    def did(self) -> str:
        return did_from_public_key(self.public_key)


@dataclass
class MiniLog:
    seed: bytes = LOG_SEED
    tree: LogTree = field(default_factory=LogTree)
    nodes: dict[NodeId, bytes] = field(default_factory=dict)
    readings: list[tuple[SignedReading, bytes]] = field(default_factory=list)
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)

    @property
    def log_id(self) -> str:
        return self.latest_or_empty().log_id

    def latest_or_empty(self) -> Checkpoint:
        return sign_checkpoint(self.seed, 0, b"\0" * 32, 0.0)

    def add(self, device: SimDevice, seq: int, time: float) -> int:
        reading = Reading(device.did, seq, (Record("temp", 20.5 + seq, time, "Cel"),))
        signed = SignedReading(reading, sign(device.seed, canonical.reading_message(reading)))
        index = self.tree.size
        self.nodes.update(self.tree.append_leaf_hashes([leaf_hash(canonical.reading_leaf(signed))]))
        self.readings.append((signed, device.public_key))
        return index

    def checkpoint(self, timestamp: float = 1_700_000_000.0) -> Checkpoint:
        cp = sign_checkpoint(self.seed, self.tree.size, self.tree.root(), timestamp)
        self.checkpoints[cp.size] = cp
        return cp

    # CheckpointSource
    def latest_checkpoint(self) -> Checkpoint | None:
        return self.checkpoints[max(self.checkpoints)] if self.checkpoints else None

    def checkpoint_at(self, size: int) -> Checkpoint | None:
        return self.checkpoints.get(size)

    def fetch(self, ids: Sequence[NodeId]) -> list[bytes]:
        return [self.nodes[i] for i in ids]

    def bundle(self, index: int, checkpoint_size: int, anchor: Anchor | None) -> ProofBundle:
        signed, key = self.readings[index]
        cp = self.checkpoints[checkpoint_size]
        consistency = None
        if anchor is not None and anchor.size != cp.size:
            consistency = consistency_proof(cp.size, anchor.size, self.fetch)
        return ProofBundle(
            signed=signed,
            device_public_key=key,
            inclusion=inclusion_proof(index, cp.size, self.fetch),
            checkpoint=cp,
            log_public_key=log_public_key(self.seed),
            anchor=anchor,
            consistency=consistency,
        )
