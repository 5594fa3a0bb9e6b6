"""DeviceClient: sends signed readings and batches to a veriot server over HTTP.

    POST {base_url}/v1/readings   body: see docs/wire-format.md
    200 {"results": [{"status": "accepted", "id": ..., "index": ...}
                     | {"status": "rejected", "reason": ..., "detail": ...}, ...],
         "accepted": n, "rejected": n}

Results come in request order: the loose readings first, then each batch's readings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType

import httpx
import msgspec

from veriot.core.errors import VeriotError
from veriot.core.types import SignedReading
from veriot.core.wire import MAX_READINGS_PER_REQUEST, CompactBatch, encode_request

READINGS_PATH = "/v1/readings"
DEFAULT_TIMEOUT_S = 10.0


class DeviceClientError(VeriotError):
    """The server could not be reached, refused the request, or answered nonsense.

    `status` is the HTTP status when there was an answer (None otherwise); `body` its text.
    """

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        self.status, self.body = status, body
        super().__init__(message)


class Accepted(msgspec.Struct, tag_field="status", tag="accepted", frozen=True):
    """The reading is in the log: `id` is its reading id, `index` its log index."""

    id: str
    index: int


class Rejected(msgspec.Struct, tag_field="status", tag="rejected", frozen=True):
    """The reading was refused; `reason` is a short code (e.g. "bad_signature")."""

    reason: str
    detail: str = ""


Verdict = Accepted | Rejected


class SubmitResult(msgspec.Struct, frozen=True):
    results: list[Verdict]
    accepted: int
    rejected: int


_result_decoder = msgspec.json.Decoder(SubmitResult)


@dataclass(frozen=True, slots=True)
class _Options:
    base_url: str
    timeout: float


class DeviceClient:
    """Posts readings to one veriot server. Use as a context manager, or call close().

    `transport` replaces the network (tests pass httpx.MockTransport); `headers` are sent
    with every request.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._options = _Options(base_url=base_url.rstrip("/"), timeout=timeout)
        self._http = httpx.Client(
            base_url=self._options.base_url,
            timeout=timeout,
            headers={"content-type": "application/json", **(headers or {})},
            transport=transport,
        )

    def send(
        self, readings: Iterable[SignedReading] = (), batches: Iterable[CompactBatch] = ()
    ) -> SubmitResult:
        """Posts the readings and batches in one request; returns the server's verdicts.

        Raises DeviceClientError when the server is unreachable, answers with an error
        status (400 for a malformed body, 413 for one too large, ...), or with a body
        that is not the result shape.
        """
        readings, batches = list(readings), list(batches)
        count = len(readings) + sum(len(b.readings) for b in batches)
        if count > MAX_READINGS_PER_REQUEST:
            raise DeviceClientError(
                f"{count} readings in one request; at most {MAX_READINGS_PER_REQUEST}"
            )
        body = encode_request(readings, batches)
        try:
            response = self._http.post(READINGS_PATH, content=body)
        except httpx.HTTPError as exc:
            raise DeviceClientError(
                f"POST {self._options.base_url}{READINGS_PATH} failed: {exc}"
            ) from exc
        if response.status_code != 200:
            raise DeviceClientError(
                f"POST {READINGS_PATH} answered {response.status_code}: {response.text[:500]}",
                status=response.status_code,
                body=response.text,
            )
        try:
            return _result_decoder.decode(response.content)
        except msgspec.MsgspecError as exc:
            raise DeviceClientError(
                f"POST {READINGS_PATH} answered 200 with an unexpected body ({exc})",
                status=200,
                body=response.text,
            ) from None

    def send_reading(self, reading: SignedReading) -> Verdict:
        """Posts one reading; returns its verdict."""
        result = self.send([reading])
        if len(result.results) != 1:
            raise DeviceClientError(f"sent 1 reading; got {len(result.results)} verdicts")
        return result.results[0]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
