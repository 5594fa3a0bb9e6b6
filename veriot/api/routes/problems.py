"""Serves a short description of each problem type, so problem `type` URIs resolve."""

from __future__ import annotations

from fastapi import APIRouter

from veriot.api.problems import Problem, ProblemKind, kind_by_slug

router = APIRouter(tags=["problems"])


@router.get("/problems/{slug}")
def describe_problem(slug: str) -> dict[str, object]:
    kind = kind_by_slug(slug)
    if kind is None:
        raise Problem(ProblemKind.NOT_FOUND, f"no problem type {slug!r}")
    return {
        "type": kind.type_uri,
        "title": kind.value.title,
        "status": kind.value.status,
        "description": kind.value.description,
    }
