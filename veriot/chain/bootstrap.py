"""Builds the chain client from Settings: the embedded chain by default, or any JSON-RPC
node with `--chain URL --chain-key FILE`."""

from __future__ import annotations

import logging
from pathlib import Path

from veriot.chain.errors import ReadOnlyChainError
from veriot.chain.web3_client import (
    DEFAULT_RPC_TIMEOUT_S,
    Deployment,
    Web3Chain,
    deploy,
    http_web3,
    load_key,
)
from veriot.config import Settings
from veriot.core.errors import ChainError
from veriot.ports import Anchor, ChainClient

log = logging.getLogger(__name__)

EMBEDDED_DIR = "chain"
DEPLOYMENT_FILE = "chain-deployment.json"
ANCHORS_FILE = "anchors.jsonl"


def embedded_dir(data_dir: Path) -> Path:
    return data_dir / EMBEDDED_DIR


def deployment_path(data_dir: Path) -> Path:
    """Where the deployment on an external chain is recorded."""
    return data_dir / DEPLOYMENT_FILE


def anchors_path(data_dir: Path) -> Path:
    return data_dir / ANCHORS_FILE


def open_chain(settings: Settings, *, deploy_if_missing: bool = True) -> ChainClient:
    """The chain of this veriot service.

    Without `settings.chain`: the embedded chain in data_dir/chain (created, with its
    contracts, on first use). With a URL: the node there, using the deployment recorded in
    data_dir/chain-deployment.json; when none is recorded and a key is given, the contracts
    are deployed and recorded first. Raises ChainError subclasses (wrong chain id, no
    contract, unfunded key, unreachable node) and InputError for a bad key file.
    """
    if settings.chain is None:
        from veriot.chain.embedded import EmbeddedChain

        return EmbeddedChain(embedded_dir(settings.data_dir))
    account = load_key(settings.chain_key) if settings.chain_key is not None else None
    path = deployment_path(settings.data_dir)
    deployment = Deployment.load(path)
    if deployment is None:
        if account is None:
            raise ReadOnlyChainError(
                f"deploy the contracts on {settings.chain} (no deployment in {path})"
            )
        if not deploy_if_missing:
            raise ChainError(f"no deployment recorded in {path}; run `veriot chain deploy`")
        deployment = deploy_contracts(settings.chain, settings.chain_key, settings.data_dir)
    return Web3Chain.connect(settings.chain, deployment, account)


def deploy_contracts(url: str, key_file: Path | None, data_dir: Path) -> Deployment:
    """Deploys a fresh DeviceRegistry and LogAnchor on the node at `url` with the key in
    `key_file`, and records them in data_dir (replacing any earlier record)."""
    if key_file is None:
        raise ReadOnlyChainError("deploy the contracts")
    account = load_key(key_file)
    w3 = http_web3(url, DEFAULT_RPC_TIMEOUT_S)
    deployment = deploy(w3, account, url=url)
    deployment.save(deployment_path(data_dir))
    log.info("recorded the deployment in %s", deployment_path(data_dir))
    return deployment


def open_verifier_chain(url: str, anchor: Anchor) -> ChainClient:
    """A read-only client for checking `anchor` against the node at `url`: the contracts are
    found from the anchor's own contract address (no veriot data needed). Raises
    WrongChainError when the node is not on the anchor's chain, NoContractError when the
    contract is not there."""
    return Web3Chain.for_anchor_contract(url, anchor.chain_id, anchor.contract)
