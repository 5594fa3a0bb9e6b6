"""The stateless half of ingest: check each reading's device, signature and clock.

Runs on worker threads (Ed25519 verification releases the GIL, so several requests
verify on every core at once). What passes becomes a `Checked` for the sequencer; what
fails becomes a rejected `Verdict` and, where it bears on a device's trust, a
`SecurityEvent`. Nothing here touches the store.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import overload

from veriot.core import canonical
from veriot.core.canonical import HASH_BYTES, device_prefix
from veriot.core.columns import DIGEST_BYTES, FixedRuns, HexIds, MessageRuns
from veriot.core.errors import InputError, RevokedDeviceError, UnknownDeviceError
from veriot.core.types import (
    BatchAuth,
    BatchSeal,
    Device,
    Reading,
    SecurityEvent,
    SecurityEventKind,
    SequenceView,
    SignedReading,
    reading_columns,
)
from veriot.core.wire import CompactBatch
from veriot.identity.registry import check_may_write
from veriot.identity.signatures import VerifyMany, verify_signature, verify_signatures
from veriot.ingest.checked import Checked as Checked
from veriot.ingest.checked import Pending
from veriot.ingest.verdict import Reason, Verdict, rejected
from veriot.ledger.batch import batch_root, batch_root_from_path
from veriot.ledger.digests import digests
from veriot.ledger.hashing import LEAF_PREFIX, leaf_hash, leaf_hashes

DeviceLookup = Callable[[str], Device | None]


def _reading_ids(messages: Sequence[bytes]) -> HexIds:
    """The ids of readings with these canonical messages (canonical.reading_id), as one
    blob of digests."""
    return HexIds(FixedRuns(digests(b"", messages), DIGEST_BYTES))


class CheckedRun(SequenceView[Checked]):
    """Checked readings of one device with strictly increasing sequence numbers, all
    signed one way, held as columns: what a request of one device's readings, or one
    compact batch, usually comes to. The sequencer and its segments take the columns
    whole; as a Sequence it is the Checked readings in order, each built on access.

    The columns hold one entry per reading, but for the authentication, which is exactly
    one of `signatures` (own signatures), `batch_auths` (each with its batch path), or
    `seal` with `positions` (members of one compact batch). Build one with `of`, which
    checks all of this; the constructor trusts its caller.
    """

    __slots__ = (
        "batch_auths",
        "device",
        "ids",
        "leaf_hashes",
        "messages",
        "names",
        "positions",
        "readings",
        "seal",
        "seqs",
        "signatures",
        "times",
    )

    def __init__(
        self,
        device: str,
        readings: Sequence[Reading],
        ids: Sequence[str],
        leaf_hashes: Sequence[bytes],
        messages: Sequence[bytes],
        seqs: Sequence[int],
        times: Sequence[float],
        names: Sequence[str],
        signatures: Sequence[bytes] = (),
        batch_auths: Sequence[BatchAuth] = (),
        seal: BatchSeal | None = None,
        positions: Sequence[int] = (),
    ) -> None:
        self.device = device
        self.readings = readings
        self.ids = ids
        self.leaf_hashes = leaf_hashes
        self.messages = messages
        self.seqs = seqs
        self.times = times
        self.names = names
        self.signatures = signatures
        self.batch_auths = batch_auths
        self.seal = seal
        self.positions = positions

    @classmethod
    def of(cls, items: Sequence[Checked | Verdict]) -> CheckedRun | None:
        """`items` as a run when there is at least one, every one is a Checked reading of
        the first one's device, their sequence numbers strictly increase, and they are
        signed one way; None otherwise."""
        if isinstance(items, CheckedRun):
            return items
        if not items or not all(type(item) is Checked for item in items):
            return None
        checked: Sequence[Checked] = items  # type: ignore[assignment]  # all Checked, tested above
        head = checked[0]
        device = head.reading.device
        if any(item.reading.device != device for item in checked):
            return None
        seqs = [item.reading.seq for item in checked]
        if any(b <= a for a, b in itertools.pairwise(seqs)):
            return None
        seal = head.seal
        signatures: list[bytes] = []
        auths: list[BatchAuth] = []
        positions: list[int] = []
        if seal is not None:
            if not all(item.seal is seal for item in checked):
                return None
            positions = [item.position for item in checked]
        elif head.batch is not None:
            for item in checked:
                if item.batch is None or item.seal is not None:
                    return None
                auths.append(item.batch)
        else:
            for item in checked:
                if item.signature is None or item.seal is not None or item.batch is not None:
                    return None
                signatures.append(item.signature)
        readings = [item.reading for item in checked]
        _, times, names = reading_columns(readings)
        return cls(
            device,
            readings,
            [item.id for item in checked],
            [item.leaf_hash for item in checked],
            [item.message for item in checked],
            seqs,
            times,
            names,
            signatures,
            auths,
            seal,
            positions,
        )

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, i: int) -> Checked: ...

    @overload
    def __getitem__(self, i: slice) -> list[Checked]: ...

    def __getitem__(self, i: int | slice) -> Checked | list[Checked]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if self.seal is not None:
            return Checked(
                self.readings[i],
                self.ids[i],
                self.leaf_hashes[i],
                self.messages[i],
                seal=self.seal,
                position=self.positions[i],
            )
        return Checked(
            self.readings[i],
            self.ids[i],
            self.leaf_hashes[i],
            self.messages[i],
            signature=self.signatures[i] if self.signatures else None,
            batch=self.batch_auths[i] if self.batch_auths else None,
        )


@dataclass(slots=True)
class CheckResult:
    """One entry per input reading, in input order (readings first, then batches); the
    entries may be a CheckedRun."""

    items: Sequence[Checked | Verdict] = field(default_factory=list)
    events: list[SecurityEvent] = field(default_factory=list)


class Verifier:
    """Checks readings against the device registry cache and the receiver's clock.

    `devices` looks a device up by did (a local cache kept in sync with the registry);
    `max_skew_s` bounds how far in the future a record's time may be.
    """

    def __init__(
        self, devices: DeviceLookup, max_skew_s: float, verify_many: VerifyMany = verify_signatures
    ) -> None:
        self._devices = devices
        self._max_skew_s = max_skew_s
        self.verify_many = verify_many

    def check(
        self,
        readings: Sequence[SignedReading],
        batches: Sequence[CompactBatch],
        now: float,
    ) -> CheckResult:
        events: list[SecurityEvent] = []
        verified: list[bool] | None = None
        if readings and not batches:
            run = self._check_own_run(readings, now)
            if isinstance(run, CheckedRun):
                return CheckResult(run, events)  # the common request of own signatures
            verified = run
        verified_batches: dict[tuple[str, bytes, bytes], bool] = {}
        items = [self._check_one(signed, now, events, verified_batches) for signed in readings]
        pending = [item for item in items if isinstance(item, Pending)]
        # The readings' own signatures, verified in one call (on other processes when
        # `verify_many` hands them out), after every cheaper check has passed; or, when
        # _check_own_run verified them all already, its answers.
        if verified is None or len(verified) != len(pending):
            verified = (
                self.verify_many([(p.public_key, p.message, p.signature) for p in pending])
                if pending
                else []
            )
        valid = iter(verified)
        out: list[Checked | Verdict] = [
            self._settle(item, next(valid), now, events) if isinstance(item, Pending) else item
            for item in items
        ]
        for batch in batches:
            checked = self._check_compact_batch(batch, now, events)
            if isinstance(checked, CheckedRun) and not out and len(batches) == 1:
                return CheckResult(checked, events)  # the common request: one clean batch
            out.extend(checked)
        return CheckResult(out, events)

    def _check_own_run(
        self, readings: Sequence[SignedReading], now: float
    ) -> CheckedRun | list[bool] | None:
        """The readings as one CheckedRun when they are one device's, each signed on its
        own, with increasing sequence numbers, and pass every check: what most requests
        of per-reading signatures are, checked as columns without an object per reading.
        When only signatures fail, their verification results (one per reading, in
        order), so that `check` reports them without verifying again; None when anything
        else is unusual, for `check` to go through reading by reading."""
        did = readings[0].reading.device
        signatures: list[bytes] = []
        for signed in readings:
            signature = signed.signature
            if signature is None or signed.batch is not None or signed.reading.device != did:
                return None
            signatures.append(signature)
        plain = [signed.reading for signed in readings]
        if any(b.seq <= a.seq for a, b in itertools.pairwise(plain)):
            return None
        try:
            device = check_may_write(self._devices(did), did, now)
            messages = canonical.reading_messages(plain)
        except (UnknownDeviceError, RevokedDeviceError, InputError):
            return None
        if max(rec.time for r in plain for rec in r.records) > now + self._max_skew_s:
            return None
        key = device.public_key
        valid = self.verify_many(
            list(zip([key] * len(messages), messages, signatures, strict=True))
        )
        if not all(valid):
            return valid
        seqs, times, names = reading_columns(plain)
        return CheckedRun(
            did,
            plain,
            _reading_ids(messages),
            FixedRuns(
                digests(
                    LEAF_PREFIX,
                    [
                        canonical.signature_leaf_prefix(sig) + m
                        for sig, m in zip(signatures, messages, strict=True)
                    ],
                ),
                HASH_BYTES,
            ),
            MessageRuns.of(device_prefix(did), messages),
            seqs,
            times,
            names,
            signatures=signatures,
        )

    @staticmethod
    def _settle(
        item: Pending, valid: bool, now: float, events: list[SecurityEvent]
    ) -> Checked | Verdict:
        reading = item.signed.reading
        if not valid:
            detail = f"signature does not verify under the registered key of {reading.device}"
            events.append(
                SecurityEvent(
                    reading.device, SecurityEventKind.BAD_SIGNATURE, now, reading.seq, detail
                )
            )
            return rejected(Reason.BAD_SIGNATURE, detail, item.id)
        leaf = canonical.signature_leaf_prefix(item.signature) + item.message
        return Checked(reading, item.id, leaf_hash(leaf), item.message, signature=item.signature)

    def _device(
        self, did: str, now: float, seq: int, events: list[SecurityEvent], reading_id: str | None
    ) -> Device | Verdict:
        try:
            return check_may_write(self._devices(did), did, now)
        except UnknownDeviceError as exc:
            # Counted in metrics but not stored: anyone can name any did, and storing an
            # event per forged id would let them fill the store.
            return rejected(Reason.UNKNOWN_DEVICE, str(exc), reading_id)
        except RevokedDeviceError as exc:
            events.append(SecurityEvent(did, SecurityEventKind.REVOKED_DEVICE, now, seq))
            return rejected(Reason.REVOKED_DEVICE, str(exc), reading_id)

    def _skewed(self, reading: Reading, now: float) -> str | None:
        limit = now + self._max_skew_s
        for record in reading.records:
            if record.time > limit:
                return (
                    f"record {record.name!r} has time {record.time:.3f}, "
                    f"{record.time - now:.1f}s ahead of the receiver's clock; "
                    f"at most {self._max_skew_s:g}s is allowed"
                )
        return None

    def _check_one(
        self,
        signed: SignedReading,
        now: float,
        events: list[SecurityEvent],
        verified_batches: dict[tuple[str, bytes, bytes], bool],
    ) -> Checked | Verdict | Pending:
        reading = signed.reading
        try:
            message = canonical.reading_message(reading)
        except InputError as exc:
            return rejected(Reason.MALFORMED, str(exc))
        rid = canonical.reading_id(message)
        device = self._device(reading.device, now, reading.seq, events, rid)
        if isinstance(device, Verdict):
            return device
        skew = self._skewed(reading, now)
        if skew is not None:
            events.append(
                SecurityEvent(reading.device, SecurityEventKind.CLOCK_SKEW, now, reading.seq, skew)
            )
            return rejected(Reason.CLOCK_SKEW, skew, rid)
        if signed.batch is not None:
            problem = self._check_batch_auth(device, message, signed.batch, verified_batches)
            if problem is not None:
                reason, detail = problem
                events.append(
                    SecurityEvent(
                        reading.device, SecurityEventKind.BAD_SIGNATURE, now, reading.seq, detail
                    )
                )
                return rejected(reason, detail, rid)
            leaf = canonical.reading_leaf(signed, message)
            return Checked(reading, rid, leaf_hash(leaf), message, batch=signed.batch)
        signature = signed.signature if signed.signature is not None else b""  # fails to verify
        return Pending(signed, rid, message, device.public_key, signature)

    @staticmethod
    def _check_batch_auth(
        device: Device,
        message: bytes,
        auth: BatchAuth,
        verified: dict[tuple[str, bytes, bytes], bool],
    ) -> tuple[Reason, str] | None:
        try:
            root = batch_root_from_path(leaf_hash(message), auth.index, auth.size, auth.path)
        except ValueError as exc:
            return Reason.BAD_BATCH, f"batch path is malformed: {exc}"
        if root != auth.root:
            return Reason.BAD_BATCH, (
                f"batch path leads to root {root.hex()}, not the signed root {auth.root.hex()}"
            )
        key = (device.did, auth.root, auth.signature)
        ok = verified.get(key)
        if ok is None:
            batch_msg = canonical.batch_message(device.did, auth.size, auth.root)
            ok = verified[key] = verify_signature(device.public_key, batch_msg, auth.signature)
        if not ok:
            return Reason.BAD_SIGNATURE, (
                f"batch signature does not verify under the registered key of {device.did}"
            )
        return None

    def _check_compact_batch(
        self,
        batch: CompactBatch,
        now: float,
        events: list[SecurityEvent],
    ) -> Sequence[Checked | Verdict]:
        """A batch signed once: recompute its root, verify one signature, prove each member.
        One item per member, as a CheckedRun when every member passed and their sequence
        numbers increase (the common case).

        The hot path of batch ingest, so the work per reading is done in comprehensions
        and what every member shares (the root, the leaf prefix) is computed once.
        """
        readings = batch.readings
        items: list[Checked | Verdict] = []
        if not readings:
            return items
        try:
            if any(r.device != batch.device for r in readings):
                raise InputError("every reading of a batch must name the batch's device")
            messages = canonical.reading_messages(readings)
        except InputError as exc:
            return [rejected(Reason.MALFORMED, str(exc)) for _ in readings]
        ids = _reading_ids(messages)
        first_seq = readings[0].seq
        device = self._device(batch.device, now, first_seq, events, None)
        if isinstance(device, Verdict):
            return [Verdict(False, id=i, reason=device.reason, detail=device.detail) for i in ids]
        members = FixedRuns(digests(LEAF_PREFIX, messages), HASH_BYTES)
        root = batch_root(members)
        size, signature = len(messages), batch.signature
        batch_msg = canonical.batch_message(batch.device, size, root)
        if not verify_signature(device.public_key, batch_msg, signature):
            detail = f"batch signature does not verify under the registered key of {batch.device}"
            events.append(
                SecurityEvent(batch.device, SecurityEventKind.BAD_SIGNATURE, now, first_seq, detail)
            )
            return [rejected(Reason.BAD_SIGNATURE, detail, i) for i in ids]
        prefix = canonical.batch_leaf_prefix(root, size, signature)
        seal = BatchSeal(root, signature, tuple(members))
        latest = max(r.time for reading in readings for r in reading.records)
        if latest <= now + self._max_skew_s:  # the common case: no member is ahead
            leaves = leaf_hashes(prefix, messages)
            seqs, times, names = reading_columns(readings)
            if all(a < b for a, b in itertools.pairwise(seqs)):
                return CheckedRun(
                    batch.device,
                    readings,
                    ids,
                    FixedRuns(leaves, HASH_BYTES),
                    MessageRuns.of(device_prefix(batch.device), messages),
                    seqs,
                    times,
                    names,
                    seal=seal,
                    positions=range(size),
                )
            return [
                Checked(r, i, leaf, m, seal=seal, position=position)
                for position, (r, i, leaf, m) in enumerate(
                    zip(readings, ids, FixedRuns(leaves, HASH_BYTES), messages, strict=True)
                )
            ]
        for position, (reading, rid, message) in enumerate(
            zip(readings, ids, messages, strict=True)
        ):
            skew = self._skewed(reading, now)
            if skew is not None:
                events.append(
                    SecurityEvent(
                        batch.device, SecurityEventKind.CLOCK_SKEW, now, reading.seq, skew
                    )
                )
                items.append(rejected(Reason.CLOCK_SKEW, skew, rid))
            else:
                items.append(
                    Checked(
                        reading,
                        rid,
                        leaf_hash(prefix + message),
                        message,
                        seal=seal,
                        position=position,
                    )
                )
        return items
