"""A small read-only Ethereum JSON-RPC endpoint in front of the embedded chain, so that a
third party can verify against it with any Ethereum client (`veriot chain serve`)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hexbytes import HexBytes

from veriot.chain.embedded import EmbeddedChain

log = logging.getLogger(__name__)

READ_METHODS = frozenset(
    {
        "eth_chainId",
        "net_version",
        "eth_blockNumber",
        "eth_call",
        "eth_getLogs",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_getTransactionReceipt",
        "eth_getTransactionByHash",
        "eth_getCode",
        "eth_getBalance",
        "eth_getStorageAt",
        "eth_getTransactionCount",
        "eth_gasPrice",
        "eth_estimateGas",
        "web3_clientVersion",
    }
)
MAX_BODY = 1 << 20


def _to_json(value: Any) -> Any:
    """web3's Python values back to JSON-RPC encoding (quantities and data as 0x hex)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, HexBytes | bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


class ChainRpcServer:
    """Serves `chain` on host:port until `close()`; `port` 0 picks a free port."""

    def __init__(self, chain: EmbeddedChain, host: str = "127.0.0.1", port: int = 0) -> None:
        self._chain = chain
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._reply(413, {"error": "body too large"})
                    return
                try:
                    request = json.loads(self.rfile.read(length))
                except ValueError:
                    self._reply(400, _error(None, -32700, "parse error"))
                    return
                if isinstance(request, list):
                    self._reply(200, [outer.handle(r) for r in request])
                else:
                    self._reply(200, outer.handle(request))

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("rpc: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle(self, request: Any) -> dict[str, Any]:
        """Answers one JSON-RPC request object."""
        if not isinstance(request, dict):
            return _error(None, -32600, "invalid request")
        rid, method, params = request.get("id"), request.get("method"), request.get("params", [])
        if method not in READ_METHODS:
            return _error(rid, -32601, f"method {method!r} is not served (read-only endpoint)")
        try:
            result = self._chain.read_rpc(str(method), list(params or []))
        except Exception as exc:  # every failure goes back to the client as an RPC error
            return _error(rid, -32000, str(exc))
        return {"jsonrpc": "2.0", "id": rid, "result": _to_json(result)}

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="chain-rpc"
        )
        self._thread.start()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}
