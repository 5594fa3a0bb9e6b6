"""What a check makes of a reading that passed: msgspec Structs, one per reading.

A module of its own because veriot.ingest.verify is compiled with mypyc (setup.py), and a
compiled module cannot define Structs: mypyc drops their class keywords (frozen, gc).
"""

from __future__ import annotations

import msgspec

from veriot.core.types import BatchAuth, BatchSeal, Reading, SignedReading
from veriot.ledger.batch import member_auth


class Checked(msgspec.Struct, frozen=True, gc=False):
    """A reading whose signature, device and clock checked out, ready to sequence: its
    reading id, its log leaf hash and its canonical message, and how it was signed,
    which is exactly one of:

    - `signature`: its own signature;
    - `batch`: the batch authentication it arrived with (root, path, signature);
    - `seal` and `position`: it is member `position` of a compact batch whose `seal` all
      its members share (the store keeps the batch once, not a path per reading).
    """

    reading: Reading
    id: str
    leaf_hash: bytes
    message: bytes
    signature: bytes | None = None
    batch: BatchAuth | None = None
    seal: BatchSeal | None = None
    position: int = 0

    @property
    def signed(self) -> SignedReading:
        """The reading with its signature or batch authentication (for a sealed member,
        its path is derived from the seal: not for the hot path)."""
        if self.seal is not None:
            return SignedReading(self.reading, batch=member_auth(self.seal, self.position))
        return SignedReading(self.reading, self.signature, self.batch)


class Pending(msgspec.Struct, frozen=True, gc=False):
    """A reading that passed every check but its own signature, which is verified with
    the other readings of its request at once."""

    signed: SignedReading
    id: str
    message: bytes
    public_key: bytes
    signature: bytes
