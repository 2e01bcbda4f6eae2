"""The object index file (cpp/object_index.h) and the manifest lines read straight into it
(cpp/manifest_lines.h), without a server: what is written reads back the same, a line the native
reader takes means what JSON says it means, and a damaged file is refused, never read past."""

import hashlib
import json
import os
import random
import tempfile
import time

import pytest

from s3torchconnector import _native
from s3torchconnector._listing.index_files import remove_unused, shared_index
from s3torchconnector._listing.indexed_objects import IndexedObjects

MD5 = '"0123456789abcdef0123456789abcdef"'


def write_index(path, entries, listing=False):
    writer = _native.ObjectIndexWriter(str(path), listing)
    for entry in entries:
        writer.add(*entry)
    writer.finish()
    return _native.ObjectIndex(str(path))


@pytest.mark.parametrize("listing", [False, True], ids=["manifest", "listing"])
def test_entries_read_back_as_written(tmp_path, listing):
    """Every field as given, across blocks (16 entries each) and key lengths; a listing's index keeps
    the storage class and LastModified too, a manifest's has none."""
    rng = random.Random(7)
    entries = []
    for _ in range(1000):
        key = "train/" + "".join(rng.choice("ab/é日-_.") for _ in range(rng.randrange(1, 30)))
        size = rng.choice([-1, 0, 1, 2**40, rng.randrange(10**6)])
        etag = rng.choice(["", MD5, '"ABCDEF0123456789abcdef0123456789"', '"e-12"', '"5f1b2c3d-1000"'])
        storage_class = rng.choice(["", "STANDARD", "GLACIER", "EXPRESS_ONEZONE"])
        modified = rng.choice(["", "2026-12-05T09:36:12.000Z", f"2026-12-05T09:{rng.randrange(60):02d}:00.000Z"])
        entries.append((rng.choice(["b", "other", "日本"]), key, size, etag, storage_class, modified))
    index = write_index(tmp_path / "x.index", entries, listing)
    assert len(index) == len(entries)
    # An unknown size keeps no ETag: a reader then asks for both, as for an unlisted object.
    assert [index.entry(i) for i in range(len(index))] == [
        (b, k, s, e if s >= 0 else "", c if listing else "", m if listing else "") for b, k, s, e, c, m in entries
    ]
    text = "".join(entry[1] + "\0" for entry in entries)
    assert index.keys_digest == hashlib.sha256(text.encode()).hexdigest()
    with pytest.raises(IndexError):
        index.entry(len(entries))


def test_an_existing_file_is_never_overwritten(tmp_path):
    (tmp_path / "x.index").write_bytes(b"someone's")
    with pytest.raises(FileExistsError):
        _native.ObjectIndexWriter(str(tmp_path / "x.index"))
    assert (tmp_path / "x.index").read_bytes() == b"someone's"


def test_an_abandoned_index_leaves_no_file(tmp_path):
    writer = _native.ObjectIndexWriter(str(tmp_path / "x.index"))
    writer.add("b", "k", 1, MD5)
    writer.abandon()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("listing", [False, True], ids=["manifest", "listing"])
def test_a_damaged_index_is_refused_not_read_past(tmp_path, listing):
    path = tmp_path / "x.index"
    classes = ["STANDARD", "GLACIER", ""]
    entries = [("b", f"key/{i:05d}", i, MD5, classes[i % 3], f"2026-12-05T09:{i % 60:02d}:00.000Z") for i in range(500)]
    write_index(path, entries, listing)
    whole = path.read_bytes()
    for cut in (0, 10, 127, len(whole) // 2, len(whole) - 1):
        path.write_bytes(whole[:cut])
        with pytest.raises(ValueError, match="is damaged"):
            _native.ObjectIndex(str(path))
    # Bytes changed anywhere: the file is refused, or each entry reads or is refused. Never a crash
    # (the sanitizer build runs this too).
    rng = random.Random(3)
    for _ in range(300):
        damaged = bytearray(whole)
        for _ in range(rng.randrange(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path.write_bytes(bytes(damaged))
        try:
            index = _native.ObjectIndex(str(path))
        except ValueError:
            continue
        for position in range(0, len(index), 7):
            try:
                index.entry(position)
            except (ValueError, IndexError):
                pass


def simple_lines_taken(text: bytes, bucket="b"):
    """What the native reader takes of ``text``: where it stopped, how many lines, their entries."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "x.index")
        writer = _native.ObjectIndexWriter(path)
        end, lines = writer.add_simple_lines(text, 0, bucket)
        writer.finish()
        index = _native.ObjectIndex(path)
        return end, lines, [index.entry(i)[:4] for i in range(len(index))]


def test_a_line_the_native_reader_takes_means_what_json_says():
    """Lines of write_manifest's shape, mutated at random: the native reader takes one only when
    JSON reads it as an object with that key, size and ETag (and nothing else); it never takes a
    line JSON would refuse or read otherwise."""
    base = '{"key":"train/a é.bin","size":123,"etag":"\\"0123456789abcdef0123456789abcdef\\""}'
    alphabet = '{}":,\\ 0123456789aeky-\x00\x1f\xff/é'
    rng = random.Random(11)
    taken = 0
    for _ in range(3000):
        line = list(base)
        for _ in range(rng.randrange(0, 3)):
            spot = rng.randrange(len(line) + 1)
            action = rng.randrange(3)
            if action == 0 and spot < len(line):
                del line[spot]
            elif action == 1:
                line.insert(spot, rng.choice(alphabet))
            elif spot < len(line):
                line[spot] = rng.choice(alphabet)
        text = "".join(line)
        raw = text.encode("utf-8", "surrogatepass") + b"\n"
        end, lines, entries = simple_lines_taken(raw)
        if lines == 0:
            assert end == 0
            continue
        taken += 1
        assert end == len(raw)
        decoded = json.loads(text)
        assert set(decoded) == {"key", "size", "etag"}
        assert entries == [("b", decoded["key"], decoded["size"], decoded["etag"])]
    assert taken > 100  # the shape itself, and spaces where it allows them


def test_lines_are_taken_up_to_the_first_other_line():
    good = b'{"key":"a","size":1,"etag":"\\"e\\""}\n'
    other = b'{"uri":"s3://b/k"}\n'
    end, lines, entries = simple_lines_taken(good * 3 + other + good)
    assert (end, lines) == (3 * len(good), 3)
    end, lines, _ = simple_lines_taken(good + good[:-1])  # no newline: left for the caller
    assert (end, lines) == (len(good), 1)
    assert simple_lines_taken(good, bucket="")[:2] == (0, 0)  # no header bucket: every line the caller's


def test_a_build_that_fails_leaves_nothing_and_a_later_one_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("S3TORCHCONNECTOR_INDEX_DIR", str(tmp_path))

    def failing(path):
        writer = _native.ObjectIndexWriter(path)
        writer.add("b", "k", 1, MD5)
        raise RuntimeError("the listing failed")

    with pytest.raises(RuntimeError, match="the listing failed"):
        shared_index("one", 0, failing)
    assert [p.suffix for p in tmp_path.iterdir()] == [".lock"]
    built = shared_index("one", 0, lambda path: write_index(path, [("b", "k", 1, MD5)]))
    assert built[0].key == "k"
    assert shared_index("one", 0, failing).path == built.path  # found, not built again


def test_unused_indexes_are_removed_and_held_ones_kept(tmp_path):
    held = write_index(tmp_path / "held.index", [("b", "k", 1, MD5)])
    del held
    holder = IndexedObjects(str(tmp_path / "held.index"))
    write_index(tmp_path / "old.index", [("b", "k", 1, MD5)])
    write_index(tmp_path / "recent.index", [("b", "k", 1, MD5)])
    (tmp_path / "stopped.building").write_bytes(b"half")
    hour_ago = time.time() - 3700
    for name in ("held.index", "old.index", "stopped.building"):
        os.utime(tmp_path / name, (hour_ago, hour_ago))
    remove_unused(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held.index", "recent.index"]
    assert holder[0].key == "k"
