"""Verification that reaches the chain: what a third party with a proof bundle and access
to any node of the chain can check without trusting veriot's database.

`verify_on_chain` adds to the bundle's own checks (veriot.ledger.bundle.verify_bundle):
the anchor is read back from the LogAnchor contract, and the device's registration, key
and revocation at the reading's time are read from the DeviceRegistry's events.
`check_anchors_against_log` is the `veriot verify` side: every root anchored on chain must
still be the root the log's stored nodes give.
"""

from __future__ import annotations

from veriot.chain.errors import NotAnchoredError, WrongChainError
from veriot.core.errors import (
    ChainError,
    RevokedDeviceError,
    RootMismatchError,
    SignatureError,
    UnknownDeviceError,
)
from veriot.identity.registry import NotYetRegisteredError
from veriot.ledger.audit import Finding, FindingKind, check_anchor
from veriot.ledger.bundle import ProofBundle, verify_bundle
from veriot.ledger.compact import Fetch
from veriot.ports import Anchor, ChainClient

DEFAULT_REGISTRATION_TOLERANCE_S = 60.0
"""Block timestamps are whole seconds and may run ahead of the wall clock (at most one
second per block when blocks come faster than one a second), so a reading signed just after
its device's registration can carry a time a little before the registration block's. A
revocation gets no such tolerance."""


def reading_time(bundle: ProofBundle) -> float:
    """The time a reading speaks for: its latest record time (a device signs after it
    measures)."""
    return max(r.time for r in bundle.signed.reading.records)


def verify_on_chain(
    bundle: ProofBundle,
    chain: ChainClient,
    *,
    registration_tolerance_s: float = DEFAULT_REGISTRATION_TOLERANCE_S,
) -> Anchor:
    """Checks the bundle offline, then against the chain; returns the anchor as read from
    the contract.

    Raises what verify_bundle raises, and: NotAnchoredError (no anchor in the bundle, or
    the contract has none at its size), WrongChainError / ChainError (the client is on
    another chain or contract than the anchor), RootMismatchError (the contract anchored
    another root), UnknownDeviceError / NotYetRegisteredError (the registry does not have
    the device at the reading's time), RevokedDeviceError (revoked at or before it),
    SignatureError (the bundle's key is not the registry's key at that time), and
    ChainError subclasses when the node fails.
    """
    verify_bundle(bundle)
    anchor, cp = bundle.anchor, bundle.checkpoint
    if anchor is None:
        raise NotAnchoredError(cp.log_id, "the bundle carries no anchor; nothing to check on chain")
    chain_id = chain.chain_id()
    if chain_id != anchor.chain_id:
        raise WrongChainError(chain_id, anchor.chain_id)
    if chain.anchor_address.lower() != anchor.contract.lower():
        raise ChainError(
            f"the bundle's anchor is in contract {anchor.contract}; the client reads "
            f"{chain.anchor_address}"
        )
    on_chain = chain.anchor_at(cp.log_id, anchor.size)
    if on_chain is None:
        raise NotAnchoredError(
            cp.log_id,
            f"contract {anchor.contract} on chain {chain_id} has no anchor at size "
            f"{anchor.size} (the bundle claims tx {anchor.tx_hash})",
        )
    if on_chain.root != anchor.root:
        raise RootMismatchError(expected=on_chain.root, calculated=anchor.root)
    if on_chain.tx_hash.lower() != anchor.tx_hash.lower():
        raise NotAnchoredError(
            cp.log_id,
            f"size {anchor.size} was anchored by tx {on_chain.tx_hash}; the bundle "
            f"claims tx {anchor.tx_hash}",
        )
    _check_device(bundle, chain, registration_tolerance_s)
    return on_chain


def verify_bundle_on_chain(
    bundle: ProofBundle,
    url: str,
    *,
    registration_tolerance_s: float = DEFAULT_REGISTRATION_TOLERANCE_S,
) -> Anchor:
    """`verify_on_chain` against the node at `url`, finding the contracts from the bundle's
    anchor alone (what `veriot verify-proof --chain URL` does). Raises NotAnchoredError when
    the bundle has no anchor, and what verify_on_chain and open_verifier_chain raise."""
    from veriot.chain.bootstrap import open_verifier_chain

    if bundle.anchor is None:
        verify_bundle(bundle)
        raise NotAnchoredError(
            bundle.checkpoint.log_id, "the bundle carries no anchor; nothing to check on chain"
        )
    chain = open_verifier_chain(url, bundle.anchor)
    try:
        return verify_on_chain(bundle, chain, registration_tolerance_s=registration_tolerance_s)
    finally:
        chain.close()


def _check_device(bundle: ProofBundle, chain: ChainClient, tolerance_s: float) -> None:
    did = bundle.signed.reading.device
    when = reading_time(bundle)
    device = chain.device_at(did, when)
    if device is None:
        raise UnknownDeviceError(did)
    if device.registered_at > when + tolerance_s:
        raise NotYetRegisteredError(did, device.registered_at, when)
    if device.revoked_at is not None and when >= device.revoked_at:
        raise RevokedDeviceError(did, device.revoked_at)
    if device.public_key != bundle.device_public_key:
        raise SignatureError(
            f"the reading is signed with key {bundle.device_public_key.hex()}; the registry's "
            f"key for {did} at {when:.3f} is {device.public_key.hex()}"
        )


def anchors_on_chain(chain: ChainClient, log_id: str) -> list[Anchor]:
    """Every anchor of the log, read from the contract's events (not from veriot)."""
    return chain.list_anchors(log_id)


def check_anchors_against_log(
    chain: ChainClient, log_id: str, fetch: Fetch, log_size: int
) -> list[Finding]:
    """Compares every root anchored on chain for the log with the root its stored nodes
    give (`fetch` is LogStore.get_nodes). This reads the compact range of each anchored
    size; to also rehash every leaf, pass `anchors_on_chain(...)` to
    veriot.ledger.audit.audit_log. Returns one ANCHOR_MISMATCH finding per rewritten
    or unrebuildable anchored size (a size beyond `log_size` means the log lost leaves);
    an empty list when history is intact. Raises ChainError when the chain cannot be read."""
    findings: list[Finding] = []
    for anchor in anchors_on_chain(chain, log_id):
        if anchor.size > log_size:
            findings.append(
                Finding(
                    FindingKind.ANCHOR_MISMATCH,
                    anchor.size,
                    f"size {anchor.size} was anchored on chain (tx {anchor.tx_hash}), but the log "
                    f"now has only {log_size} leaves",
                )
            )
            continue
        finding = check_anchor(anchor.size, anchor.root, fetch)
        if finding is not None:
            findings.append(
                Finding(
                    finding.kind,
                    finding.index,
                    f"{finding.detail} (anchored in tx {anchor.tx_hash}, block {anchor.block})",
                )
            )
    return findings
