"""The veriot error tree. Every error carries the facts a user needs to act.

VeriotError
├── InputError (ValueError)          malformed or out-of-range input
│   ├── DecodeError                  bytes that do not parse as the wire format says
│   ├── InsufficientDataError        too few points for a forecast or a health index
│   └── ClockSkewError               a timestamp too far from the receiver's clock
├── AuthError                        who is speaking cannot be trusted
│   ├── SignatureError               a signature that does not verify
│   ├── UnknownDeviceError (KeyError)
│   └── RevokedDeviceError
├── ConflictError                    state says no
│   ├── ReplayError                  the (device, seq) pair is already in the log
│   ├── EquivocationError            same (device, seq), different content
│   └── DeviceExistsError
├── LedgerError                      the log or a proof is not what it claims
│   ├── RootMismatchError            expected and calculated roots differ
│   ├── ProofError                   a proof has the wrong shape for its sizes
│   └── MissingNodeError (LookupError)
├── StoreError                       the store failed or is inconsistent
└── ChainError                       the chain node failed or refused
"""

from __future__ import annotations


class VeriotError(Exception):
    """Base of every error veriot raises on purpose."""


class InputError(VeriotError, ValueError):
    """Input that is malformed, of the wrong type, or out of range."""


class DecodeError(InputError):
    """Bytes that do not parse as the wire format says."""


class InsufficientDataError(InputError):
    """Too little data for the computation asked for (a forecast, a health index)."""


class ClockSkewError(InputError):
    def __init__(self, time: float, now: float, max_skew: float) -> None:
        self.time, self.now, self.max_skew = time, now, max_skew
        super().__init__(
            f"timestamp {time:.3f} is {abs(time - now):.1f}s from the receiver's clock "
            f"({now:.3f}); at most {max_skew:g}s is allowed"
        )


class AuthError(VeriotError):
    """The sender cannot be trusted for this input."""


class SignatureError(AuthError):
    """A signature that does not verify under the key it claims."""


class UnknownDeviceError(AuthError, KeyError):
    def __init__(self, did: str) -> None:
        self.did = did
        super().__init__(f"device {did} is not registered")

    def __str__(self) -> str:
        return str(self.args[0])


class RevokedDeviceError(AuthError):
    def __init__(self, did: str, revoked_at: float) -> None:
        self.did, self.revoked_at = did, revoked_at
        super().__init__(f"device {did} was revoked at {revoked_at:.3f}")


class ConflictError(VeriotError):
    """The request conflicts with what is already recorded."""


class ReplayError(ConflictError):
    def __init__(self, did: str, seq: int, existing_id: str, existing_index: int) -> None:
        self.did, self.seq = did, seq
        self.existing_id, self.existing_index = existing_id, existing_index
        super().__init__(f"device {did} already sent sequence number {seq} (reading {existing_id})")


class EquivocationError(ConflictError):
    def __init__(self, did: str, seq: int, existing_id: str, new_id: str) -> None:
        self.did, self.seq, self.existing_id, self.new_id = did, seq, existing_id, new_id
        super().__init__(
            f"device {did} signed two different readings with sequence number {seq}: "
            f"got {new_id}, already have {existing_id}"
        )


class DeviceExistsError(ConflictError):
    def __init__(self, did: str) -> None:
        self.did = did
        super().__init__(f"device {did} is already registered")


class LedgerError(VeriotError):
    """The log, or a proof about it, is not what it claims to be."""


class RootMismatchError(LedgerError):
    def __init__(self, expected: bytes, calculated: bytes) -> None:
        self.expected, self.calculated = expected, calculated
        super().__init__(f"root mismatch: got {calculated.hex()}, want {expected.hex()}")


class ProofError(LedgerError, ValueError):
    """A proof whose shape does not fit the sizes and indices it is about."""


class MissingNodeError(LedgerError, LookupError):
    def __init__(self, level: int, index: int) -> None:
        self.level, self.index = level, index
        super().__init__(f"tree node (level {level}, index {index}) is not stored")


class StoreError(VeriotError):
    """The store failed, or holds data that contradicts itself."""


class ChainError(VeriotError):
    """The chain node failed, refused, or is not the chain we expect."""
