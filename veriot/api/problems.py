"""RFC 9457 problem details: one stable `type` per kind of error.

Each type is a relative URI, `/problems/<slug>`, that the API itself serves as a short
description, so a client can look a problem up where it met it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class _Kind:
    status: int
    title: str
    description: str


class ProblemKind(Enum):
    MALFORMED_REQUEST = _Kind(
        400,
        "Malformed request",
        "The body is not valid JSON of the documented shape: wrong types, unknown fields, "
        "bad base64 or out-of-range values.",
    )
    UNSUPPORTED_MEDIA_TYPE = _Kind(
        415, "Unsupported media type", "The body must be sent as application/json."
    )
    PAYLOAD_TOO_LARGE = _Kind(
        413, "Payload too large", "The body is larger than the configured limit (max_body_bytes)."
    )
    UNAUTHORIZED = _Kind(
        401, "Unauthorized", "This endpoint needs an operator API key: Authorization: Bearer <key>."
    )
    BAD_SIGNATURE = _Kind(
        403,
        "Bad signature",
        "A signature does not verify under the device's registered Ed25519 key.",
    )
    BAD_BATCH = _Kind(
        403,
        "Bad batch authentication",
        "A batch inclusion path does not lead to the signed batch root.",
    )
    UNKNOWN_DEVICE = _Kind(403, "Unknown device", "The device is not registered.")
    REVOKED_DEVICE = _Kind(
        403, "Revoked device", "The device was revoked; its readings are refused."
    )
    REPLAY = _Kind(409, "Replay", "The device's sequence number is already in the log.")
    EQUIVOCATION = _Kind(
        409,
        "Equivocation",
        "The device signed two different readings with one sequence number; "
        "recorded as a security event.",
    )
    CLOCK_SKEW = _Kind(
        422,
        "Clock skew",
        "A record's time is further ahead of the receiver's clock than max_clock_skew_s allows.",
    )
    READINGS_REJECTED = _Kind(
        422,
        "Readings rejected",
        "Every reading of the request was rejected, for several reasons; see results.",
    )
    NOT_FOUND = _Kind(404, "Not found", "No such resource.")
    CONFLICT = _Kind(
        409,
        "Conflict",
        "The request conflicts with what is recorded (for example, a device registered twice).",
    )
    INVALID_PARAMETER = _Kind(
        422, "Invalid parameter", "A query or path parameter is malformed or out of range."
    )
    INSUFFICIENT_DATA = _Kind(
        422,
        "Insufficient data",
        "There are too few readings for what was asked (a forecast, a health index).",
    )
    NOT_YET_PROVABLE = _Kind(
        409,
        "Not yet provable",
        "The log cannot prove this yet (for example, a tree size beyond the latest checkpoint).",
    )
    UNAVAILABLE = _Kind(
        503,
        "Service unavailable",
        "The store or chain could not record the request; nothing was stored. Retry later.",
    )

    @property
    def slug(self) -> str:
        return self.name.lower().replace("_", "-")

    @property
    def type_uri(self) -> str:
        return f"/problems/{self.slug}"


class Problem(Exception):
    """Raise from a handler to answer with problem+json."""

    def __init__(self, kind: ProblemKind, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.extensions = kind, detail, extensions


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    kind = problem.kind.value
    body: dict[str, Any] = {
        "type": problem.kind.type_uri,
        "title": kind.title,
        "status": kind.status,
        "detail": problem.detail,
    }
    if instance:
        body["instance"] = instance
    body.update(problem.extensions)
    headers = {"WWW-Authenticate": "Bearer"} if kind.status == 401 else None
    return JSONResponse(
        body, status_code=kind.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def kind_by_slug(slug: str) -> ProblemKind | None:
    for kind in ProblemKind:
        if kind.slug == slug:
            return kind
    return None
