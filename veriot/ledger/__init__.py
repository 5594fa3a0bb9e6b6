"""The verifiable log: RFC 9162 hashing, the compact range, proofs, checkpoints, bundles
and audits. Pure code: proofs plan the node ids they need and a caller-supplied `fetch`
reads them (see docs/log.md)."""

from veriot.ledger.audit import (
    AuditReport,
    Finding,
    FindingKind,
    audit_log,
    check_anchor,
    committed_size,
)
from veriot.ledger.batch import batch_root, batch_root_from_path, batch_tree
from veriot.ledger.bundle import (
    Anchor,
    ProofBundle,
    bundle_from_json,
    bundle_leaf_hash,
    bundle_to_json,
    checkpoint_from_json,
    inclusion_from_json,
    verify_bundle,
    verify_reading_signature,
)
from veriot.ledger.checkpoint import log_id_for, log_public_key, sign_checkpoint, verify_checkpoint
from veriot.ledger.compact import Fetch, LogTree, compact_range_ids
from veriot.ledger.hashing import (
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREFIX,
    NODE_PREFIX,
    leaf_hash,
    node_hash,
)
from veriot.ledger.proof import (
    ProofPlan,
    consistency_proof,
    inclusion_proof,
    plan_consistency,
    plan_inclusion,
    plan_root,
    root_at,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "Anchor",
    "AuditReport",
    "Fetch",
    "Finding",
    "FindingKind",
    "LogTree",
    "ProofBundle",
    "ProofPlan",
    "audit_log",
    "batch_root",
    "batch_root_from_path",
    "batch_tree",
    "bundle_from_json",
    "bundle_leaf_hash",
    "bundle_to_json",
    "check_anchor",
    "checkpoint_from_json",
    "committed_size",
    "compact_range_ids",
    "consistency_proof",
    "inclusion_from_json",
    "inclusion_proof",
    "leaf_hash",
    "log_id_for",
    "log_public_key",
    "node_hash",
    "plan_consistency",
    "plan_inclusion",
    "plan_root",
    "root_at",
    "root_from_inclusion",
    "sign_checkpoint",
    "verify_bundle",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_reading_signature",
]
