"""A device's Ed25519 key and its key file.

The key file is JSON, readable only by its owner (mode 0600):

    {"did": "did:key:z6Mk...", "seed": "<base64 of the 32-byte seed>",
     "type": "fridge-sensor", "name": "fridge-7"}
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from veriot.core.errors import InputError
from veriot.identity.did import did_from_public_key
from veriot.identity.signatures import SEED_BYTES, generate_seed

KEY_FILE_MODE = 0o600


class KeyFileError(InputError):
    """A key file that cannot be written, read, or trusted."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"key file {path}: {problem}")


class DeviceKey:
    """A device's Ed25519 signing key, with the name and type it registers under.

    The seed is the private key: the repr shows only the did.
    """

    __slots__ = ("_signing_key", "did", "name", "public_key", "type")

    def __init__(self, seed: bytes, *, name: str = "", type: str = "") -> None:
        """Requires a 32-byte seed; raises InputError otherwise."""
        if len(seed) != SEED_BYTES:
            raise InputError(f"an Ed25519 seed is {SEED_BYTES} bytes; got {len(seed)}")
        self._signing_key = SigningKey(bytes(seed))
        self.public_key: bytes = bytes(self._signing_key.verify_key)
        self.did: str = did_from_public_key(self.public_key)
        self.name, self.type = name, type

    @classmethod
    def generate(cls, *, name: str = "", type: str = "") -> DeviceKey:
        """A new key from the operating system's CSPRNG."""
        return cls(generate_seed(), name=name, type=type)

    @classmethod
    def from_seed(cls, seed: bytes, *, name: str = "", type: str = "") -> DeviceKey:
        return cls(seed, name=name, type=type)

    @property
    def seed(self) -> bytes:
        return bytes(self._signing_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature over exactly `message`."""
        signature: bytes = self._signing_key.sign(message).signature
        return signature

    def __repr__(self) -> str:
        return f"DeviceKey(did={self.did!r}, name={self.name!r}, type={self.type!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DeviceKey):
            return NotImplemented
        return (self.seed, self.name, self.type) == (other.seed, other.name, other.type)

    def __hash__(self) -> int:
        return hash(self.did)

    # --- key files --------------------------------------------------------------------

    def to_json(self) -> dict[str, str]:
        return {
            "did": self.did,
            "seed": base64.b64encode(self.seed).decode("ascii"),
            "type": self.type,
            "name": self.name,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the key file at `path` with mode 0600, atomically: the file appears
        complete or not at all. Refuses to replace an existing file (KeyFileError), so a
        key is never lost by accident."""
        target = Path(path)
        data = (json.dumps(self.to_json(), indent=2) + "\n").encode()
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        except OSError as exc:
            raise KeyFileError(target, f"cannot write ({exc.strerror})") from exc
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            # link() fails when the target exists, which rename() would silently replace.
            os.link(tmp, target)
        except FileExistsError:
            raise KeyFileError(target, "already exists; refusing to overwrite a key") from None
        except OSError as exc:
            raise KeyFileError(target, f"cannot write ({exc.strerror})") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DeviceKey:
        """Reads a key file written by `save`. Raises KeyFileError naming the problem:
        missing file, not JSON, missing or mistyped fields, bad base64, a seed of the
        wrong length, or a did that does not belong to the seed."""
        source = Path(path)
        try:
            text = source.read_bytes()
        except FileNotFoundError:
            raise KeyFileError(source, "does not exist") from None
        except OSError as exc:
            raise KeyFileError(source, f"cannot read ({exc.strerror})") from exc
        try:
            doc: Any = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise KeyFileError(source, f"is not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise KeyFileError(source, f"want a JSON object; got {type(doc).__name__}")
        for field in ("did", "seed"):
            if not isinstance(doc.get(field), str):
                raise KeyFileError(source, f"field {field!r} is missing or not a string")
        for field in ("name", "type"):
            if not isinstance(doc.get(field, ""), str):
                raise KeyFileError(source, f"field {field!r} is not a string")
        try:
            seed = base64.b64decode(doc["seed"], validate=True)
        except (binascii.Error, ValueError):
            raise KeyFileError(source, "field 'seed' is not base64") from None
        if len(seed) != SEED_BYTES:
            raise KeyFileError(source, f"seed is {len(seed)} bytes; want {SEED_BYTES}")
        key = cls(seed, name=doc.get("name", ""), type=doc.get("type", ""))
        if key.did != doc["did"]:
            raise KeyFileError(
                source, f"did {doc['did']} does not match the seed, whose did is {key.did}"
            )
        return key
