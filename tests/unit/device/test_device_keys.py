"""DeviceKey and its key file."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from veriot.core.errors import InputError
from veriot.device import DeviceKey, KeyFileError
from veriot.identity import public_key_from_did, verify_signature

SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def test_from_seed_gives_the_rfc8032_public_key_and_its_did() -> None:
    key = DeviceKey.from_seed(SEED, name="fridge-7", type="fridge")
    assert (
        key.public_key.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert public_key_from_did(key.did) == key.public_key
    assert key.seed == SEED and (key.name, key.type) == ("fridge-7", "fridge")


def test_generate_gives_distinct_working_keys() -> None:
    a, b = DeviceKey.generate(), DeviceKey.generate()
    assert a.did != b.did
    assert verify_signature(a.public_key, b"m", a.sign(b"m"))
    assert not verify_signature(b.public_key, b"m", a.sign(b"m"))


def test_repr_does_not_show_the_seed() -> None:
    key = DeviceKey.from_seed(SEED)
    text = repr(key)
    assert key.did in text
    assert SEED.hex() not in text and base64.b64encode(SEED).decode() not in text


def test_a_seed_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(InputError, match="got 31"):
        DeviceKey.from_seed(SEED[:31])


def test_save_then_load(tmp_path: Path) -> None:
    key = DeviceKey.from_seed(SEED, name="fridge-7", type="fridge")
    path = key.save(tmp_path / "device.key")
    assert DeviceKey.load(path) == key
    doc = json.loads(path.read_text())
    assert doc == {
        "did": key.did,
        "seed": base64.b64encode(SEED).decode(),
        "type": "fridge",
        "name": "fridge-7",
    }


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_key_file_is_readable_only_by_its_owner(tmp_path: Path) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        path = DeviceKey.generate().save(tmp_path / "k.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_refuses_to_overwrite_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    first = DeviceKey.generate()
    first.save(path)
    with pytest.raises(KeyFileError, match="already exists; refusing to overwrite"):
        DeviceKey.generate().save(path)
    assert DeviceKey.load(path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


def test_save_into_a_missing_folder_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot write"):
        DeviceKey.generate().save(tmp_path / "nope" / "k.json")


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "bad.key"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


GOOD = DeviceKey.from_seed(SEED).to_json()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "is not JSON"),
        ("{", "is not JSON"),
        (b"\xff\xfe", "is not JSON"),
        ("[1, 2]", "want a JSON object; got list"),
        (json.dumps({**GOOD, "did": None}), "field 'did' is missing or not a string"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "seed"}), "field 'seed' is missing"),
        (json.dumps({**GOOD, "name": 7}), "field 'name' is not a string"),
        (json.dumps({**GOOD, "seed": "not base64!"}), "field 'seed' is not base64"),
        (json.dumps({**GOOD, "seed": base64.b64encode(SEED[:16]).decode()}), "seed is 16 bytes"),
        (
            json.dumps({**GOOD, "did": "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"}),
            "does not match the seed",
        ),
    ],
)
def test_bad_key_files_are_refused_with_the_reason(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(KeyFileError, match=problem) as info:
        DeviceKey.load(path)
    assert str(path) in str(info.value)


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        DeviceKey.load(tmp_path / "absent.key")


def test_name_and_type_are_optional_in_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"did": GOOD["did"], "seed": GOOD["seed"]}))
    key = DeviceKey.load(path)
    assert (key.name, key.type, key.seed) == ("", "", SEED)
