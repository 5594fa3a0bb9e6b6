"""The audit behind `veriot verify`: does the store still hold what the log committed to?

One streaming pass in chunks of leaf indices:

1. each stored reading's leaf hash is compared with the level-0 node the log committed
   (edited, deleted, inserted, reordered readings);
2. the tree is rebuilt from the committed level-0 nodes; every interior node it completes
   is compared with the stored one (node_mismatch), and its root at each checkpoint and
   anchor size with the signed or anchored root (root_mismatch, anchor_mismatch) - this
   catches a reading edited together with its level-0 node;
3. checkpoint signatures are checked under the log key (bad_checkpoint_signature).

`with_index_findings` adds what the store's own index check found (index_mismatch): the
entries that find leaves by device and seq, time, name or id are not the log's, but a
lowered seq range would let a replay in after a restart and a wrong name or time hides
readings from queries, so an audit of the store covers them too.

Memory is one chunk of hashes plus the hashes of readings that did not match (a second
pass over the committed leaves tells a reordered reading from an edited one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from veriot.core.errors import MissingNodeError, SignatureError
from veriot.core.types import Checkpoint, IndexMismatch, NodeId
from veriot.ledger.checkpoint import verify_checkpoint
from veriot.ledger.compact import Fetch, LogTree, check_fetched
from veriot.ledger.hashing import EMPTY_ROOT, leaf_hash
from veriot.ledger.proof import root_at
from veriot.ports import Anchor

DEFAULT_CHUNK = 4096
"""Leaves read and compared per step of the audit."""


class FindingKind(StrEnum):
    EDITED = "edited"
    """The stored reading at an index no longer hashes to the leaf the log committed."""
    DELETED = "deleted"
    """Indices the log committed (or signed a checkpoint over) with no stored reading."""
    INSERTED = "inserted"
    """A reading at an index the log never had, or a second reading at an index."""
    REORDERED = "reordered"
    """The reading at index i hashes to the committed leaf of another index j."""
    ROOT_MISMATCH = "root_mismatch"
    """The committed leaves no longer rebuild the root of a signed checkpoint."""
    ANCHOR_MISMATCH = "anchor_mismatch"
    """The committed leaves no longer rebuild a root anchored on chain."""
    NODE_MISMATCH = "node_mismatch"
    """A stored interior node differs from the hash of its children."""
    MISSING_NODE = "missing_node"
    """A node the log persisted is no longer stored."""
    BAD_CHECKPOINT_SIGNATURE = "bad_checkpoint_signature"
    """A stored checkpoint does not verify under the log key."""
    INDEX_MISMATCH = "index_mismatch"
    """What finds stored leaves (by device and seq, time, record name or id; alerts by
    their fields) disagrees with what they hold (`LogStore.index_mismatches`)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem. `index` is the first leaf index concerned, or the tree size for
    checkpoint and anchor findings; `count` how many consecutive ones it stands for."""

    kind: FindingKind
    index: int
    detail: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class AuditReport:
    size: int
    leaves_checked: int
    checkpoints_checked: int
    anchors_checked: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings

    def of_kind(self, kind: FindingKind) -> list[Finding]:
        return [f for f in self.findings if f.kind is kind]


LeafData = Callable[[int, int], list[tuple[int, bytes]]]
"""`LogStore.leaf_data(start, end)`: (index, leaf data) for start <= index < end."""


def stream_leaves(
    leaf_data: LeafData, size: int, chunk: int = DEFAULT_CHUNK
) -> Iterator[tuple[int, bytes]]:
    """Every stored leaf in index order, read `chunk` indices at a time, then any stored
    beyond `size` (which the audit reports as inserted)."""
    for start in range(0, size, chunk):
        yield from leaf_data(start, min(size, start + chunk))
    yield from leaf_data(size, 2**63 - 1)


def committed_size(fetch: Fetch) -> int:
    """How many leaves the stored tree commits to: the number of level-0 nodes, found with
    O(log n) reads (nodes are appended without gaps, so the first missing one ends them).
    This does not trust the reading rows, which an audit must check, not believe."""

    def stored(index: int) -> bool:
        try:
            fetch([NodeId(0, index)])
        except MissingNodeError:
            return False
        return True

    if not stored(0):
        return 0
    high = 1
    while stored(high):
        high *= 2
    low = high // 2  # stored(low) holds, stored(high) does not
    while high - low > 1:
        mid = (low + high) // 2
        if stored(mid):
            low = mid
        else:
            high = mid
    return high


def check_anchor(size: int, anchored_root: bytes, fetch: Fetch) -> Finding | None:
    """Compares a root anchored on chain for `size` leaves with the root the stored nodes
    give now. Returns an ANCHOR_MISMATCH finding when anchored history was rewritten or its
    nodes are gone, None when they agree."""
    try:
        local = root_at(size, fetch)
    except MissingNodeError as exc:
        return Finding(
            FindingKind.ANCHOR_MISMATCH,
            size,
            f"anchored root {anchored_root.hex()} at size {size} cannot be rebuilt: {exc}",
        )
    if local != anchored_root:
        return Finding(
            FindingKind.ANCHOR_MISMATCH,
            size,
            f"root at size {size} is {local.hex()}; want the anchored {anchored_root.hex()}",
        )
    return None


@dataclass(frozen=True, slots=True)
class _Target:
    """A root the rebuilt tree must reach at `size`: signed by the log or anchored."""

    size: int
    root: bytes
    kind: FindingKind
    what: str


class _Auditor:
    def __init__(self, size: int, fetch: Fetch, chunk: int) -> None:
        self.size, self.fetch, self.chunk = size, fetch, chunk
        self.findings: list[Finding] = []
        self.tree: LogTree | None = LogTree()  # None once a missing node stops the rebuild
        self.mismatched: dict[bytes, list[int]] = {}
        self.expected = 0
        self.leaves_checked = 0
        self._run: list[_Target] = []

    def add(self, kind: FindingKind, index: int, detail: str, count: int = 1) -> None:
        self.findings.append(Finding(kind, index, detail, count))

    def fetch_or_none(self, ids: Sequence[NodeId]) -> list[bytes | None]:
        """Stored hashes of `ids`, None (and a finding) for each one that is missing."""
        if not ids:
            return []
        try:
            hashes = self.fetch(ids)
        except MissingNodeError:
            out: list[bytes | None] = []
            for node in ids:
                try:
                    (h,) = self.fetch([node])
                    out.append(h)
                except MissingNodeError as exc:
                    self.add(FindingKind.MISSING_NODE, node.index << node.level, str(exc))
                    out.append(None)
            return out
        check_fetched(ids, hashes)
        return list(hashes)

    def deleted(self, first: int, end: int) -> None:
        n = end - first
        span = f"leaf {first} is" if n == 1 else f"leaves {first}..{end - 1} are"
        self.add(FindingKind.DELETED, first, f"{span} committed but not stored", n)

    def stored_leaf(self, index: int, data: bytes, committed: bytes | None) -> None:
        self.leaves_checked += 1
        if index < self.expected:
            self.add(FindingKind.INSERTED, index, f"a second stored reading at index {index}")
            return
        if index > self.expected:
            self.deleted(self.expected, index)
        self.expected = index + 1
        h = leaf_hash(data)
        if committed is not None and h != committed:
            self.mismatched.setdefault(h, []).append(index)

    def check_target(self, target: _Target, root: bytes) -> None:
        """Consecutive mismatches are reported as one finding: after one bad leaf every
        later checkpoint mismatches too."""
        if root == target.root:
            self.flush_run()
        else:
            self._run.append(target)

    def flush_run(self) -> None:
        for kind in (FindingKind.ROOT_MISMATCH, FindingKind.ANCHOR_MISMATCH):
            run = [t for t in self._run if t.kind is kind]
            if not run:
                continue
            first = run[0]
            detail = (
                f"the committed leaves do not rebuild the {first.what} root "
                f"{first.root.hex()} at size {first.size}"
            )
            if len(run) > 1:
                detail += f", nor those of {len(run) - 1} later ones up to size {run[-1].size}"
            self.add(kind, first.size, detail, len(run))
        self._run.clear()

    def rebuild(
        self,
        start: int,
        committed: list[bytes | None],
        targets: Iterator[_Target],
        pending: list[_Target],
    ) -> None:
        """Appends committed leaves [start, start + len(committed)) to the rebuilt tree,
        checking interior nodes and the roots of targets that fall in the range."""
        if self.tree is None:
            return
        if any(h is None for h in committed):
            self.tree = None  # reported as missing_node; later roots cannot be rebuilt
            return
        leaves = [h for h in committed if h is not None]
        end = start + len(leaves)
        pos = start
        while pos < end:
            stop = min(end, pending[0].size) if pending else end
            new = self.tree.append_leaf_hashes(leaves[pos - start : stop - start])
            interior = [(n, h) for n, h in new if n.level > 0]
            stored = self.fetch_or_none([n for n, _ in interior])
            for (node, want), got in zip(interior, stored, strict=True):
                if got is not None and got != want:
                    self.add(
                        FindingKind.NODE_MISMATCH,
                        node.index << node.level,
                        f"stored node (level {node.level}, index {node.index}) is "
                        f"{got.hex()}; its children hash to {want.hex()}",
                    )
            pos = stop
            while pending and pending[0].size == self.tree.size:
                self.check_target(pending.pop(0), self.tree.root())
                pending.extend(_take(targets, 1))


def _take(it: Iterator[_Target], n: int) -> list[_Target]:
    out = []
    for _ in range(n):
        nxt = next(it, None)
        if nxt is None:
            break
        out.append(nxt)
    return out


def audit_log(
    leaves: Iterable[tuple[int, bytes]],
    size: int,
    fetch: Fetch,
    checkpoints: Iterable[Checkpoint],
    log_public_key: bytes,
    anchors: Iterable[Anchor] = (),
    chunk: int = DEFAULT_CHUNK,
) -> AuditReport:
    """Audits a log of `size` leaves.

    `leaves` are the stored (index, leaf data) pairs in index order (see `stream_leaves`);
    `fetch` returns stored node hashes (`LogStore.get_nodes`). Requires size >= 0 and
    chunk >= 1. Raises StoreError when the store returns malformed nodes.
    """
    auditor = _Auditor(size, fetch, chunk)
    targets: list[_Target] = []
    n_checkpoints = n_anchors = 0
    for cp in checkpoints:
        n_checkpoints += 1
        try:
            verify_checkpoint(cp, log_public_key)
        except SignatureError as exc:
            auditor.add(FindingKind.BAD_CHECKPOINT_SIGNATURE, cp.size, str(exc))
            continue
        targets.append(_Target(cp.size, cp.root, FindingKind.ROOT_MISMATCH, "signed checkpoint"))
    for anchor in anchors:
        n_anchors += 1
        targets.append(_Target(anchor.size, anchor.root, FindingKind.ANCHOR_MISMATCH, "anchored"))
    beyond = [t for t in targets if t.size > size]
    for t in beyond:
        auditor.deleted(size, t.size)
    for t in (t for t in targets if t.size == 0):
        auditor.check_target(t, EMPTY_ROOT)
    in_range = iter(sorted((t for t in targets if 0 < t.size <= size), key=lambda t: t.size))
    pending = _take(in_range, 1)

    stored = iter(leaves)
    nxt = next(stored, None)
    for start in range(0, size, chunk):
        end = min(size, start + chunk)
        committed = auditor.fetch_or_none([NodeId(0, i) for i in range(start, end)])
        while nxt is not None and nxt[0] < end:
            index, data = nxt
            if index < 0:
                auditor.add(FindingKind.INSERTED, index, f"a stored reading at index {index}")
            else:
                c = committed[index - start] if index >= start else None
                auditor.stored_leaf(index, data, c)
            nxt = next(stored, None)
        auditor.rebuild(start, committed, in_range, pending)
    auditor.flush_run()
    if auditor.expected < size:
        auditor.deleted(auditor.expected, size)
    while nxt is not None:
        auditor.leaves_checked += 1
        auditor.add(
            FindingKind.INSERTED, nxt[0], f"a stored reading at index {nxt[0]}; the log has {size}"
        )
        nxt = next(stored, None)
    _classify_mismatches(auditor)
    findings = sorted(auditor.findings, key=_finding_order)
    return AuditReport(
        size=size,
        leaves_checked=auditor.leaves_checked,
        checkpoints_checked=n_checkpoints,
        anchors_checked=n_anchors,
        findings=tuple(findings),
    )


def _finding_order(finding: Finding) -> tuple[int, str]:
    """Findings are listed by index, then by kind."""
    return finding.index, finding.kind.value


def with_index_findings(report: AuditReport, mismatches: Iterable[IndexMismatch]) -> AuditReport:
    """`report` with an index_mismatch finding for each of `mismatches`."""
    findings = [
        *report.findings,
        *(Finding(FindingKind.INDEX_MISMATCH, m.index, m.detail, m.count) for m in mismatches),
    ]
    return replace(report, findings=tuple(sorted(findings, key=_finding_order)))


def _classify_mismatches(auditor: _Auditor) -> None:
    """A reading that matches no committed leaf was edited; one that matches the committed
    leaf of another index was moved there."""
    if not auditor.mismatched:
        return
    found_at: dict[int, int] = {}
    for start in range(0, auditor.size, auditor.chunk):
        end = min(auditor.size, start + auditor.chunk)
        try:
            committed = auditor.fetch([NodeId(0, i) for i in range(start, end)])
        except MissingNodeError:
            continue  # already reported by the first pass
        for j, h in enumerate(committed, start):
            for i in auditor.mismatched.get(h, ()):
                found_at.setdefault(i, j)
    for h, indices in auditor.mismatched.items():
        for i in indices:
            if i in found_at:
                auditor.add(
                    FindingKind.REORDERED,
                    i,
                    f"the reading stored at index {i} is the one the log committed at "
                    f"index {found_at[i]}",
                )
            else:
                auditor.add(
                    FindingKind.EDITED,
                    i,
                    f"the reading stored at index {i} hashes to {h.hex()}, not to the "
                    "committed leaf",
                )
