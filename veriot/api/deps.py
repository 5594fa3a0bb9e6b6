"""Shared dependencies, as Annotated aliases a handler declares in its signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from veriot.api.problems import Problem, ProblemKind
from veriot.bootstrap import Node
from veriot.core.types import ApiKey


def get_node(request: Request) -> Node:
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
