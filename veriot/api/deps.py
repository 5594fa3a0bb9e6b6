"""Shared dependencies, as Annotated aliases a handler declares in its signature."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from veriot.api.problems import Problem, ProblemKind
from veriot.bootstrap import Node
from veriot.core.types import ApiKey


async def get_node(request: Request) -> Node:
    # async, so FastAPI resolves it on the event loop rather than on a worker thread
    # (a thread hop per request, on the ingest path)
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


def require_api_key(request: Request, node: NodeDep) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            ProblemKind.UNAUTHORIZED, "missing operator API key (Authorization: Bearer <key>)"
        )
    key = node.check_api_key(token.strip())
    if key is None:
        raise Problem(ProblemKind.UNAUTHORIZED, "the API key is not valid")
    return key


OperatorDep = Annotated[ApiKey, Depends(require_api_key)]


def time_param(value: str | None, name: str) -> float | None:
    """Seconds since the epoch from a query parameter given as seconds or ISO 8601."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise Problem(
            ProblemKind.INVALID_PARAMETER,
            f"{name}={value!r} is neither seconds since the epoch nor an ISO 8601 time",
        ) from None
