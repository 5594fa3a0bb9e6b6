"""The Python device SDK: keys, signing, record parsing, and the HTTP client."""

from veriot.device.client import (
    Accepted,
    DeviceClient,
    DeviceClientError,
    Rejected,
    SubmitResult,
    Verdict,
)
from veriot.device.keys import DeviceKey, KeyFileError
from veriot.device.records import parse_record_arg, parse_record_args
from veriot.device.signing import sign_batch, sign_reading

__all__ = [
    "Accepted",
    "DeviceClient",
    "DeviceClientError",
    "DeviceKey",
    "KeyFileError",
    "Rejected",
    "SubmitResult",
    "Verdict",
    "parse_record_arg",
    "parse_record_args",
    "sign_batch",
    "sign_reading",
]
