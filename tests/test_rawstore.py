"""Raw store: content-addressed, atomic, verified on read; local and fsspec memory roots."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import uuid

import pytest

from pipeline.rawstore import CorruptObjectError, MissingObjectError, RawStore


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    if request.param == "local":
        return RawStore(tmp_path / "raw")
    return RawStore(f"memory://rawstore-test-{uuid.uuid4().hex}")


def test_put_get_roundtrip_and_layout(store):
    body = b"<html><h1>Trial</h1></html>"
    sha = hashlib.sha256(body).hexdigest()
    obj = store.put("veeva", body)
    assert (obj.sha256, obj.size, obj.created) == (sha, len(body), True)
    assert obj.path.endswith(f"/veeva/objects/{sha[:2]}/{sha}.html.gz")
    assert store.get("veeva", sha) == body
    assert store.exists("veeva", sha) and not store.exists("clinconnect", sha)
    assert list(store.iter_shas("veeva")) == [sha]


def test_same_bytes_stored_once_and_never_rewritten(store, tmp_path):
    first = store.put("veeva", b"version one")
    again = store.put("veeva", b"version one")
    other = store.put("veeva", b"version two")
    assert again.created is False and again.path == first.path
    assert other.sha256 != first.sha256
    assert sorted(store.iter_shas("veeva")) == sorted([first.sha256, other.sha256])
    if store.is_local:
        before = os.stat(first.path)
        store.put("veeva", b"version one")
        after = os.stat(first.path)
        assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
        # deterministic compression: same bytes -> same file bytes
        assert gzip.decompress(open(first.path, "rb").read()) == b"version one"


def test_corrupt_object_is_a_clear_error(tmp_path):
    store = RawStore(tmp_path / "raw")
    obj = store.put("veeva", b"original bytes")
    with open(obj.path, "wb") as fh:
        fh.write(gzip.compress(b"tampered bytes"))
    with pytest.raises(CorruptObjectError, match="corrupt: content hashes to"):
        store.get("veeva", obj.sha256)
    with open(obj.path, "wb") as fh:
        fh.write(b"not gzip at all")
    with pytest.raises(CorruptObjectError, match="not valid gzip"):
        store.get("veeva", obj.sha256)
    good = gzip.compress(b"original bytes")
    with open(obj.path, "wb") as fh:
        fh.write(good[: len(good) // 2])
    with pytest.raises(CorruptObjectError, match="truncated"):
        store.get("veeva", obj.sha256)


def test_missing_object(store):
    with pytest.raises(MissingObjectError):
        store.get("veeva", "0" * 64)


@pytest.mark.parametrize("source", ["../etc", "Veeva", "a/b", "", ".."])
def test_names_cannot_escape_the_root(tmp_path, source):
    store = RawStore(tmp_path / "raw")
    with pytest.raises(ValueError):
        store.put(source, b"x")
    with pytest.raises(ValueError):
        store.get("veeva", "../../../../etc/passwd")


def test_failed_write_leaves_no_object_and_no_temp(tmp_path, monkeypatch):
    store = RawStore(tmp_path / "raw")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.put("veeva", b"page")
    monkeypatch.undo()
    leftovers = [p for p in (tmp_path / "raw").rglob("*") if p.is_file()]
    assert leftovers == []
    assert store.put("veeva", b"page").created is True


def test_sweep_removes_temp_files_of_dead_writers_only(tmp_path):
    store = RawStore(tmp_path / "raw")
    obj = store.put("veeva", b"page")
    shard = os.path.dirname(obj.path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    dead_tmp = os.path.join(shard, f".{'a' * 64}.html.gz.{dead_pid}.0011aabb.tmp")
    live_tmp = os.path.join(shard, f".{'b' * 64}.html.gz.{os.getpid()}.0011aabb.tmp")
    for p in (dead_tmp, live_tmp):
        open(p, "wb").close()
    assert store.sweep_temp("veeva") == 1
    assert not os.path.exists(dead_tmp) and os.path.exists(live_tmp)
    assert os.path.exists(obj.path)
    assert list(store.iter_shas("veeva")) == [obj.sha256]  # temp files never listed


def test_file_url_root(tmp_path):
    store = RawStore(f"file://{tmp_path}/raw")
    obj = store.put("clinconnect", b"abc")
    assert store.is_local and obj.path.startswith(str(tmp_path))
    assert RawStore(tmp_path / "raw").get("clinconnect", obj.sha256) == b"abc"
