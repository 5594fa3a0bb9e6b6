"""API shapes (distinct from domain types): how devices, readings and checkpoints look
in JSON responses, and the request models of the operator endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from veriot.core.types import Checkpoint, Device, StoredReading
from veriot.core.wire import encode_reading


class DeviceIn(BaseModel):
    """Register a device by its Ed25519 public key (hex, 32 bytes) or its did:key."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    type: str = Field(
        default="generic", min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$"
    )
    public_key: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    did: str | None = Field(default=None, max_length=128)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)


def device_json(device: Device) -> dict[str, Any]:
    return {
        "did": device.did,
        "name": device.name,
        "type": device.type,
        "public_key": device.public_key.hex(),
        "status": device.status.value,
        "registered_at": device.registered_at,
        "revoked_at": device.revoked_at,
        "metadata": device.metadata,
    }


def reading_json(stored: StoredReading) -> dict[str, Any]:
    out = encode_reading(stored.signed)
    out.update(
        {
            "id": stored.id,
            "index": stored.index,
            "received_at": stored.received_at,
            "leaf_hash": stored.leaf_hash.hex(),
        }
    )
    if stored.gap:
        out["gap"] = True
    return out


def checkpoint_json(cp: Checkpoint, log_public_key: bytes) -> dict[str, Any]:
    return {
        "log_id": cp.log_id,
        "size": cp.size,
        "root": cp.root.hex(),
        "timestamp": cp.timestamp,
        "signature": cp.signature.hex(),
        "log_public_key": log_public_key.hex(),
    }
