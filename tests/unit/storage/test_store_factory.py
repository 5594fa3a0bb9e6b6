"""open_store picks the adapter a URL names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from veriot.core.errors import InputError
from veriot.storage import MemoryStore, SqliteStore, open_store


def test_no_url_means_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    store = open_store(None, tmp_path / "data")
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "data" / "veriot.db"
    assert store.path.exists()
    store.close()


def test_a_sqlite_url_names_the_file(tmp_path: Path) -> None:
    absolute = open_store(f"sqlite:///{tmp_path}/elsewhere/x.db", tmp_path / "data")
    assert isinstance(absolute, SqliteStore) and absolute.path == tmp_path / "elsewhere" / "x.db"
    absolute.close()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        relative = open_store("sqlite:///rel.db", tmp_path / "data")
        assert isinstance(relative, SqliteStore) and relative.path == Path("rel.db")
        relative.close()
    finally:
        os.chdir(cwd)
    assert (tmp_path / "rel.db").exists()


def test_memory_url(tmp_path: Path) -> None:
    assert isinstance(open_store("memory:", tmp_path), MemoryStore)


@pytest.mark.parametrize("url", ["mysql://x", "sqlite:/x.db", "", "memory"])
def test_other_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(InputError):
        open_store(url, tmp_path)
