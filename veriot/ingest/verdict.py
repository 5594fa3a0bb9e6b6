"""What ingest says about each reading, and the stable reason codes of a rejection."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import msgspec


class Reason(StrEnum):
    """Why a reading was rejected. The values are stable: metrics, API and acks use them."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    BAD_BATCH = "bad_batch"
    UNKNOWN_DEVICE = "unknown_device"
    REVOKED_DEVICE = "revoked_device"
    REPLAY = "replay"
    EQUIVOCATION = "equivocation"
    CLOCK_SKEW = "clock_skew"
    UNAVAILABLE = "unavailable"


class Verdict(msgspec.Struct, frozen=True, gc=False):
    """Accepted (with the reading's id and log index) or rejected (with a reason).

    A replay carries the id and index of the reading already in the log, so an
    at-least-once sender learns that its earlier copy was stored. (A frozen msgspec
    Struct rather than a dataclass: one is built per reading on the ingest path, and a
    Struct is built several times faster.)
    """

    accepted: bool
    id: str | None = None
    index: int | None = None
    reason: Reason | None = None
    detail: str = ""
    gap: bool = False

    def to_json(self) -> dict[str, object]:
        if self.accepted:
            out: dict[str, object] = {"status": "accepted", "id": self.id, "index": self.index}
            if self.gap:
                out["gap"] = True
            return out
        out = {"status": "rejected", "reason": self.reason.value if self.reason else None}
        if self.detail:
            out["detail"] = self.detail
        if self.id is not None:
            out["id"] = self.id
        if self.index is not None:
            out["index"] = self.index
        return out


class _AcceptedJson(msgspec.Struct, omit_defaults=True, gc=False):
    """Verdict.to_json of an accepted verdict, encoded by msgspec without a dict."""

    status: str
    id: str | None
    index: int | None
    gap: bool = False


_encoder = msgspec.json.Encoder()


def encode_verdicts(verdicts: Sequence[Verdict]) -> bytes:
    """The JSON answer to a batch of readings: `{"accepted": n, "rejected": m, "results":
    [Verdict.to_json(), ...]}`, in the verdicts' order (the ingest response and MQTT acks)."""
    results: list[_AcceptedJson | dict[str, object]] = [
        _AcceptedJson("accepted", v.id, v.index, v.gap) if v.accepted else v.to_json()
        for v in verdicts
    ]
    accepted = sum(1 for v in verdicts if v.accepted)
    return _encoder.encode(
        {"accepted": accepted, "rejected": len(verdicts) - accepted, "results": results}
    )


def rejected(reason: Reason, detail: str, reading_id: str | None = None) -> Verdict:
    return Verdict(accepted=False, reason=reason, detail=detail, id=reading_id)
