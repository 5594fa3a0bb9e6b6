"""Readings recorded one chain transaction each, against veriot's batched anchoring, on the
same chain in the same run.

    python bench/anchoring.py                          # the embedded chain (a temp dir)
    python bench/anchoring.py --chain URL --chain-key FILE   # any node, e.g. anvil

Baseline: every reading is anchored by its own transaction (the LogAnchor contract, size
growing by one). veriot: readings go into the Merkle log; one signed checkpoint covering
all of them is anchored in one transaction. Printed: readings/s both ways, gas per
reading, transactions per 100,000 readings, and the ratios (targets: >= 100x readings/s,
< 1 gas per reading at 100,000 readings per anchor).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import tempfile
import time
from pathlib import Path

from veriot.chain.bootstrap import open_chain
from veriot.config import Settings
from veriot.ledger.checkpoint import sign_checkpoint
from veriot.ledger.compact import LogTree
from veriot.ledger.hashing import leaf_hash
from veriot.ports import ChainClient

LOG_SEED = b"\x42" * 32


def baseline(chain: ChainClient, readings: int) -> tuple[float, float]:
    """One transaction per reading: (readings/s, gas per reading)."""
    log_id = hashlib.sha256(b"baseline").hexdigest()
    gas = 0
    start = time.perf_counter()
    for i in range(1, readings + 1):
        anchor = chain.anchor(log_id, i, hashlib.sha256(i.to_bytes(8, "big")).digest(), i)
        gas += _gas(chain, anchor.tx_hash)
    elapsed = time.perf_counter() - start
    return readings / elapsed, gas / readings


def batched(chain: ChainClient, readings: int, anchors: int) -> tuple[float, float, float]:
    """`anchors` periods of `readings` readings each, one anchor per period:
    (readings/s including the log's hashing and checkpoint signing, gas per reading of the
    last anchor, seconds spent on chain per anchor)."""
    tree = LogTree()
    gas = 0
    chain_s = 0.0
    start = time.perf_counter()
    for period in range(anchors):
        base = period * readings
        leaves = [leaf_hash(b"\x01" + (base + i).to_bytes(8, "big") * 16) for i in range(readings)]
        tree.append_leaf_hashes(leaves)
        cp = sign_checkpoint(LOG_SEED, tree.size, tree.root(), time.time())
        t = time.perf_counter()
        anchor = chain.anchor(cp.log_id, cp.size, cp.root, cp.timestamp)
        chain_s += time.perf_counter() - t
        gas = _gas(chain, anchor.tx_hash)
    elapsed = time.perf_counter() - start
    return readings * anchors / elapsed, gas / readings, chain_s / anchors


def _gas(chain: ChainClient, tx_hash: str) -> int:
    web3 = getattr(chain, "web3")  # noqa: B009 - both adapters are Web3Chain
    return int(web3.eth.get_transaction_receipt(tx_hash)["gasUsed"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chain", help="JSON-RPC URL (default: a fresh embedded chain)")
    parser.add_argument("--chain-key", type=Path, help="operator key file for --chain")
    parser.add_argument(
        "--baseline-readings",
        type=int,
        default=300,
        help="readings sent one transaction each (default 300)",
    )
    parser.add_argument(
        "--readings", type=int, default=100_000, help="readings per anchor (default 100,000)"
    )
    parser.add_argument("--anchors", type=int, default=3, help="anchor periods (default 3)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        chain = open_chain(Settings(data_dir=Path(tmp), chain=args.chain, chain_key=args.chain_key))
        where = args.chain or "embedded chain (py-evm)"
        print(f"chain: {where}, id {chain.chain_id()}")
        base_rate, base_gas = baseline(chain, args.baseline_readings)
        rate, gas, chain_s = batched(chain, args.readings, args.anchors)
        chain.close()

    per_100k_base = 100_000
    per_100k_batched = math.ceil(100_000 / args.readings)
    print(f"{'':34}{'1 tx/reading':>16}{'veriot batched':>18}")
    print(f"{'readings/s':34}{base_rate:>16,.1f}{rate:>18,.0f}")
    print(f"{'gas per reading':34}{base_gas:>16,.0f}{gas:>18,.3f}")
    print(f"{'transactions per 100,000 readings':34}{per_100k_base:>16,}{per_100k_batched:>18,}")
    print(
        f"(batched: {args.readings:,} readings per anchor, {args.anchors} anchors, "
        f"{chain_s * 1000:.1f} ms on chain per anchor; baseline: "
        f"{args.baseline_readings} readings)"
    )
    speedup, gas_ratio = rate / base_rate, base_gas / gas
    print(
        f"ratio: {speedup:,.0f}x the readings/s (target >= 100x), "
        f"{gas_ratio:,.0f}x less gas per reading; "
        f"{gas:.3f} gas per reading (target < 1)"
    )
    return 0 if speedup >= 100 and gas < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
