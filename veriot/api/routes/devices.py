"""Device registry endpoints (operator)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from veriot.api.deps import NodeDep, OperatorDep
from veriot.api.problems import Problem, ProblemKind
from veriot.api.schemas import DeviceIn, device_json
from veriot.identity.did import did_from_public_key, public_key_from_did

router = APIRouter(prefix="/v1/devices", tags=["devices"])


@router.get("", summary="List devices (operator)")
def list_devices(node: NodeDep, _key: OperatorDep) -> dict[str, Any]:
    return {"items": [device_json(d) for d in node.store.list_devices()]}


@router.post("", status_code=201, summary="Register a device (operator)")
async def register_device(body: DeviceIn, node: NodeDep, _key: OperatorDep) -> JSONResponse:
    if (body.public_key is None) == (body.did is None):
        raise Problem(ProblemKind.MALFORMED_REQUEST, "give exactly one of public_key and did")
    public_key = (
        bytes.fromhex(body.public_key) if body.public_key else public_key_from_did(body.did or "")
    )
    device = await asyncio.to_thread(
        node.register_device, public_key, body.name, body.type, body.metadata
    )
    assert device.did == did_from_public_key(public_key)
    return JSONResponse(
        device_json(device), status_code=201, headers={"Location": f"/v1/devices/{device.did}"}
    )


@router.get("/{did}", summary="One device (operator)")
def get_device(did: str, node: NodeDep, _key: OperatorDep) -> dict[str, Any]:
    device = node.store.get_device(did)
    if device is None:
        raise Problem(ProblemKind.NOT_FOUND, f"device {did} is not registered")
    return device_json(device)


@router.post("/{did}/revoke", summary="Revoke a device (operator)")
async def revoke_device(did: str, node: NodeDep, _key: OperatorDep) -> dict[str, Any]:
    device = await asyncio.to_thread(node.revoke_device, did)
    return device_json(device)
