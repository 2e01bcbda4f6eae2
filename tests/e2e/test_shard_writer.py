"""Writing tar shards against a real S3 API (moto over HTTP): ShardWriter's samples read back the
same through S3IterableDataset(shard_format="tar") and through WebDataset, shards respect their
size and count limits, bad samples and arguments are refused before anything is written, an
exception aborts the shard in progress; and `python -m s3torchconnector.shards pack` packs a raw
prefix end to end."""

import gc
import os
import pty
import subprocess
import sys
import time

import numpy
import pytest
import webdataset

from s3torchconnector import S3ClientConfig, S3Exception, S3IterableDataset, ShardWriter
from s3torchconnector.shards import main as shards_main
from s3torchconnector.shards import pack, parse_size

MIB = 1024 * 1024
INDEXES = ("", ".index.json")  # a shard's key, and its sidecar index's


def shard_writer(s3, pattern="shards/train-%06d.tar", **options):
    return ShardWriter(s3.uri(pattern), region=s3.region, endpoint=s3.endpoint, **options)


def read_back(s3, prefix="shards/"):
    dataset = S3IterableDataset.from_prefix(s3.uri(prefix), region=s3.region, endpoint=s3.endpoint, shard_format="tar")
    return list(dataset)


def without_urls(sample):
    return {name: value for name, value in sample.items() if name not in ("__url__", "__local_path__")}


def body(i: int, size: int) -> bytes:
    return bytes((i * 7 + j) % 251 for j in range(size))


def samples_to_write(count):
    """Samples with every kind of value, of sizes that vary; and what a reader gets back for each."""
    written, expected = [], []
    for i in range(count):
        text = f"sample {i}: ß✓"
        written.append(
            {
                "__key__": f"train/{i:04d}",
                "jpg": body(i, 300 * i),
                "cls": i % 10,
                "txt": text,
                "score.json": bytearray(b'{"p": %d}' % i),
                "f32": memoryview(numpy.full(3, i, numpy.float32)),
                "w": 0.5 + i,
                "__url__": "metadata: not written",
            }
        )
        expected.append(
            {
                "__key__": f"train/{i:04d}",
                "jpg": body(i, 300 * i),
                "cls": str(i % 10).encode(),
                "txt": text.encode(),
                "score.json": b'{"p": %d}' % i,
                "f32": numpy.full(3, i, numpy.float32).tobytes(),
                "w": str(0.5 + i).encode(),
            }
        )
    return written, expected


def tar_size(sample) -> int:
    """Bytes a sample with short ASCII names takes in a tar: a 512-byte header per member, and data
    padded to 512-byte blocks."""
    return sum(512 + -(-len(value) // 512) * 512 for name, value in sample.items() if not name.startswith("_"))


def object_size(s3, uri):
    return s3.boto3.head_object(Bucket=s3.bucket, Key=uri.split("/", 3)[3])["ContentLength"]


@pytest.mark.parametrize("max_size, max_count", [(20_000, 1000), (1_000_000, 4), (9_000, 3)])
def test_samples_read_back_in_order_across_shards_within_the_limits(s3, max_size, max_count):
    written, expected = samples_to_write(23)
    with shard_writer(s3, max_size=max_size, max_count=max_count) as writer:
        destinations = [writer.write(sample) for sample in written]
    assert writer.sample_count == 23 and writer.close() == writer.shard_uris

    shards = writer.shards
    assert len(shards) > 1
    assert [shard.uri for shard in shards] == [s3.uri(f"shards/train-{n:06d}.tar") for n in range(len(shards))]
    # Each shard with its index beside it (tests/e2e/test_tar_random_access.py reads them).
    assert s3.keys("shards/") == [f"shards/train-{n:06d}.tar{index}" for n in range(len(shards)) for index in INDEXES]
    firsts = [destinations.index(shard.uri) for shard in shards]
    for n, shard in enumerate(shards):
        held = expected[firsts[n] : firsts[n] + shard.samples]
        assert shard.size == object_size(s3, shard.uri) == sum(map(tar_size, held)) + 1024
        assert shard.samples <= max_count
        assert shard.size <= max_size or shard.samples == 1  # a sample too large for any shard has its own
        if n + 1 < len(shards):  # a shard ends only when the next sample would not fit
            assert shard.samples == max_count or shard.size + tar_size(expected[firsts[n + 1]]) > max_size

    samples = read_back(s3)
    assert [without_urls(sample) for sample in samples] == expected
    assert [sample["__url__"] for sample in samples] == destinations


def test_a_sample_larger_than_a_shard_gets_a_shard_of_its_own(s3):
    small = [{"__key__": f"s/{i}", "bin": b"x" * 100} for i in range(4)]
    large = {"__key__": "s/large", "bin": b"L" * 10_000}
    with shard_writer(s3, max_size=4096) as writer:
        for sample in small[:2] + [large] + small[2:]:
            writer.write(sample)
    assert [shard.samples for shard in writer.shards] == [2, 1, 2]
    assert [without_urls(sample) for sample in read_back(s3)] == small[:2] + [large] + small[2:]


def test_webdataset_reads_our_shards_the_same(s3, tmp_path):
    written, expected = samples_to_write(9)
    # PAX headers: a name longer than ustar's 100 characters, and one that is not ASCII.
    long_key = "deep/" + "d" * 120 + "/0001"
    written.append({"__key__": long_key, "Seg.PNG": b"png bytes", "cls": 1})
    expected.append({"__key__": long_key, "seg.png": b"png bytes", "cls": b"1"})  # readers lower-case extensions
    written.append({"__key__": "übung/éclair", "txt": "Ünïcödé"})
    expected.append({"__key__": "übung/éclair", "txt": "Ünïcödé".encode()})
    with shard_writer(s3, max_count=4) as writer:
        for sample in written:
            writer.write(sample)
    assert [without_urls(sample) for sample in read_back(s3)] == expected

    theirs = []
    for n, shard in enumerate(writer.shards):
        path = tmp_path / f"shard-{n}.tar"
        s3.boto3.download_file(s3.bucket, shard.uri.split("/", 3)[3], str(path))
        for sample in webdataset.WebDataset(str(path), shardshuffle=False):
            assert sample["__url__"] == str(path)
            theirs.append(without_urls(sample))
    assert theirs == expected


def test_an_exception_aborts_the_shard_in_progress_and_keeps_the_completed_ones(s3):
    # Samples of 6 MiB over parts of 5 MiB: every shard is a multipart upload.
    config = S3ClientConfig(part_size=5 * MIB)
    samples = [{"__key__": f"big/{i}", "bin": body(i, 6 * MIB)} for i in range(5)]
    with pytest.raises(RuntimeError, match="stop in the middle"):
        with shard_writer(s3, max_count=2, s3client_config=config) as writer:
            for sample in samples:
                writer.write(sample)
            assert wait_for(lambda: s3.multipart_uploads())  # the third shard is on its way up...
            raise RuntimeError("stop in the middle")
    # ...and is gone: no object, no multipart upload; the two completed shards stay whole, with their indexes.
    assert s3.keys() == [f"shards/train-00000{n}.tar{index}" for n in range(2) for index in INDEXES]
    assert s3.multipart_uploads() == []
    assert writer.shard_uris == [s3.uri("shards/train-000000.tar"), s3.uri("shards/train-000001.tar")]
    assert [without_urls(sample) for sample in read_back(s3)] == samples[:4]
    with pytest.raises(ValueError, match="closed ShardWriter"):
        writer.write({"__key__": "more", "bin": b""})


def wait_for(condition, seconds=30.0):
    """The condition's value once it holds (or after ``seconds``): the server sees requests the
    native client sends in the background."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_abort_and_an_unfinished_writer_leave_nothing(s3):
    writer = shard_writer(s3)
    writer.write({"__key__": "a", "bin": b"1"})
    writer.abort()
    assert writer.close() == [] and s3.keys() == [] and s3.multipart_uploads() == []
    dropped = shard_writer(s3)
    dropped.write({"__key__": "a", "bin": b"1"})
    del dropped
    gc.collect()
    with shard_writer(s3) as empty:
        pass
    assert empty.shard_uris == [] and s3.keys() == [] and s3.multipart_uploads() == []


def test_a_failed_upload_closes_the_writer(s3):
    writer = ShardWriter(f"s3://{s3.bucket}-missing/train-%06d.tar", region=s3.region, endpoint=s3.endpoint)
    writer.write({"__key__": "a", "bin": b"1"})
    with pytest.raises(S3Exception, match="NoSuchBucket"):
        writer.close()
    assert writer.shard_uris == []
    with pytest.raises(ValueError, match="closed ShardWriter"):
        writer.write({"__key__": "b", "bin": b"2"})


def test_numbering_starts_where_asked_and_a_literal_percent_is_kept(s3):
    with shard_writer(s3, "out/100%%-%03d.tar", start_shard=7, max_count=1) as writer:
        writer.write({"__key__": "a", "bin": b"1"})
        writer.write({"__key__": "b", "bin": b"2"})
    assert s3.keys() == [f"out/100%-00{n}.tar{index}" for n in (7, 8) for index in INDEXES]


def test_without_indexes_only_the_shards_are_written(s3):
    with shard_writer(s3, max_count=2, write_index=False) as writer:
        for i in range(5):
            writer.write({"__key__": f"a/{i}", "bin": b"%d" % i})
    assert s3.keys() == [f"shards/train-{n:06d}.tar" for n in range(3)]
    assert [sample["__key__"] for sample in read_back(s3)] == [f"a/{i}" for i in range(5)]


def test_a_failed_index_write_raises_and_keeps_its_shard(s3):
    writer = shard_writer(s3)
    put_object = writer._client.put_object

    def refuse_indexes(bucket, key, storage_class=None):
        if key.endswith(".index.json"):
            raise S3Exception(f"AccessDenied: PutObject of s3://{bucket}/{key} was denied")
        return put_object(bucket, key, storage_class)

    writer._client.put_object = refuse_indexes
    writer.write({"__key__": "a/1", "bin": b"1"})
    with pytest.raises(S3Exception, match="train-000000.tar.index.json was denied"):
        writer.close()
    assert s3.keys() == ["shards/train-000000.tar"] and writer.shard_uris == [s3.uri("shards/train-000000.tar")]
    assert [sample["__key__"] for sample in read_back(s3)] == ["a/1"]
    with pytest.raises(ValueError, match="closed ShardWriter"):
        writer.write({"__key__": "a/2", "bin": b"2"})


GOOD = {"__key__": "good/0001", "bin": b"ok"}


@pytest.mark.parametrize(
    "sample, error, message",
    [
        (["__key__", "a"], TypeError, "a sample is a dict"),
        ({"jpg": b"x"}, ValueError, "has no '__key__'"),
        ({"__key__": "", "jpg": b"x"}, ValueError, "__key__ is empty"),
        ({"__key__": 7, "jpg": b"x"}, TypeError, "__key__ must be a string"),
        ({"__key__": "train/0001.left", "jpg": b"x"}, ValueError, "a dot in its last path component.*'train/0001'"),
        ({"__key__": "/train/0001", "jpg": b"x"}, ValueError, "starts with '/'"),
        ({"__key__": "train//0001", "jpg": b"x"}, ValueError, "empty, '.' or '..' path component"),
        ({"__key__": "train/../0001", "jpg": b"x"}, ValueError, "empty, '.' or '..' path component"),
        ({"__key__": "train/", "jpg": b"x"}, ValueError, "empty, '.' or '..' path component"),
        ({"__key__": "a\0b", "jpg": b"x"}, ValueError, "NUL"),
        ({"__key__": "__meta__/0001", "jpg": b"x"}, ValueError, "named like WebDataset's metadata"),
        ({"__key__": "0001"}, ValueError, "no fields to write"),
        ({"__key__": "0001", "__url__": "s3://b/k"}, ValueError, "no fields to write"),
        ({"__key__": "0001", "": b"x"}, ValueError, "a field with an empty name"),
        ({"__key__": "0001", "a/jpg": b"x"}, ValueError, "cannot contain '/'"),
        ({"__key__": "0001", "jpg": b"x", "JPG": b"y"}, ValueError, "both 'jpg' and 'JPG'"),
        ({"__key__": "0001", 3: b"x"}, TypeError, "a field named 3"),
        ({"__key__": "0001", "jpg": None}, TypeError, "'jpg' of the sample '0001' is a NoneType"),
        ({"__key__": "0001", "cls": True}, TypeError, "int\\(flag\\)"),
        ({"__key__": "0001", "json": {"a": 1}}, TypeError, "is a dict.*encode it"),
        ({"__key__": "0001", "npy": numpy.zeros(3)}, TypeError, "is a ndarray"),
        ({"__key__": "0001", "txt": "\udc80"}, ValueError, "not valid text"),
        ({"__key__": "0001", "bin": memoryview(b"abcdef")[::2]}, ValueError, "not contiguous"),
    ],
)
def test_a_bad_sample_is_refused_before_anything_is_written(s3, sample, error, message):
    with shard_writer(s3) as writer:
        with pytest.raises(error, match=message):
            writer.write(sample)
        assert s3.keys() == [] and s3.multipart_uploads() == []
        writer.write(GOOD)  # still usable, and nothing of the refused sample is in the shard
        with pytest.raises(error, match=message):
            writer.write(sample)
    assert [without_urls(sample) for sample in read_back(s3)] == [GOOD]


def test_a_key_repeated_by_the_next_sample_is_refused(s3):
    with shard_writer(s3) as writer:
        writer.write({"__key__": "a/1", "jpg": b"1"})
        with pytest.raises(ValueError, match="the key of the sample written just before"):
            writer.write({"__key__": "a/1", "cls": b"2"})  # readers would merge it into the first
        writer.write({"__key__": "a/2", "jpg": b"3"})
    assert [without_urls(sample) for sample in read_back(s3)] == [
        {"__key__": "a/1", "jpg": b"1"},
        {"__key__": "a/2", "jpg": b"3"},
    ]


@pytest.mark.parametrize(
    "pattern, options, error, message",
    [
        ("shards/train.tar", {}, ValueError, "exactly one integer format"),
        ("shards/%06d-%06d.tar", {}, ValueError, "exactly one integer format"),
        ("shards/train-%s.tar", {}, ValueError, "exactly one integer format"),
        ("shards/train-%(n)d.tar", {}, ValueError, "exactly one integer format"),
        ("shards/100%-%d.tar", {}, ValueError, "write a literal % as %%"),
        ("shards/train-%06d.tar.gz", {}, ValueError, "compressed"),
        ("shards/train-%06d.tar", {"max_size": 0}, ValueError, "max_size must be at least 1"),
        ("shards/train-%06d.tar", {"max_size": 1e9}, TypeError, "max_size must be an int"),
        ("shards/train-%06d.tar", {"max_count": 0}, ValueError, "max_count must be at least 1"),
        ("shards/train-%06d.tar", {"max_count": True}, TypeError, "max_count must be an int"),
        ("shards/train-%06d.tar", {"start_shard": -1}, ValueError, "start_shard must be at least 0"),
        ("shards/train-%06d.tar", {"write_index": 1}, TypeError, "write_index must be a bool"),
        ("k" * 1005 + "-%06d.tar", {}, ValueError, "longer than S3's limit"),  # the index's key would be
    ],
)
def test_bad_writer_arguments_are_refused(s3, pattern, options, error, message):
    with pytest.raises(error, match=message):
        shard_writer(s3, pattern, **options)
    assert s3.keys() == []


def test_bad_pattern_uris_and_regions_are_refused(s3):
    with pytest.raises(ValueError, match="is not an S3 URI"):
        ShardWriter("https://bucket/train-%06d.tar", region=s3.region)
    with pytest.raises(ValueError, match="region must be a non-empty string"):
        ShardWriter(s3.uri("train-%06d.tar"), region="")
    with pytest.raises(TypeError):
        ShardWriter(s3.uri("train-%06d.tar"))  # region is required


@pytest.mark.parametrize(
    "text, size",
    [
        ("256MiB", 256 * MIB),
        ("64MB", 64_000_000),
        ("1GiB", 1 << 30),
        ("1000", 1000),
        ("1.5KiB", 1536),
        ("2 gb", 2_000_000_000),
        ("7b", 7),
    ],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "5XB", "-1", "0", "0.1", "1e9", "12 MiB extra"])
def test_bad_sizes(text):
    with pytest.raises(ValueError, match="not a size|less than one byte"):
        parse_size(text)


# --- python -m s3torchconnector.shards pack ---------------------------------------------------------

RAW_SAMPLES = 40


@pytest.fixture
def raw(s3):
    """Objects under raw/ and, in listing order, the samples they make."""
    objects = {"raw/a/": b""}  # a "folder" marker: not a file, skipped
    for i in range(RAW_SAMPLES):
        folder = "v1.0/" if i % 3 else "a/"  # dots in folder names are fine
        objects[f"raw/{folder}{i:04d}.jpg"] = body(i, 100 + 97 * i)
        objects[f"raw/{folder}{i:04d}.cls"] = str(i % 5).encode()
        if i % 4 == 0:
            objects[f"raw/{folder}{i:04d}.seg.png"] = body(i + 1, 50)
    objects["elsewhere/0001.jpg"] = b"not under the prefix"
    for key, data in objects.items():
        s3.put(key, data)
    samples = {}
    for key in sorted(key for key in objects if key.startswith("raw/") and not key.endswith("/")):
        folder, _, name = key[len("raw/") :].rpartition("/")
        stem, _, extension = name.partition(".")
        base = f"{folder}/{stem}"
        samples.setdefault(base, {"__key__": base})[extension] = objects[key]
    return list(samples.values())


def run_pack(s3, *args, stderr=subprocess.PIPE):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "s3torchconnector.shards",
            "pack",
            *args,
            "--region",
            s3.region,
            "--endpoint",
            s3.endpoint,
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=300,
    )


def test_the_pack_command_packs_a_prefix(s3, raw):
    done = run_pack(s3, s3.uri("raw/"), s3.uri("shards"), "--shard-size", "16KiB", "--max-count", "6")
    assert done.returncode == 0, done.stderr
    shard_keys = [key for key in s3.keys("shards/") if not key.endswith(".index.json")]
    assert s3.keys("shards/") == [key + index for key in shard_keys for index in INDEXES]
    assert f"wrote {len(shard_keys)} shards, {RAW_SAMPLES} samples, to {s3.uri('shards')}" in done.stdout
    assert shard_keys == [f"shards/shard-{n:06d}.tar" for n in range(len(shard_keys))]

    samples = read_back(s3)
    assert [without_urls(sample) for sample in samples] == raw
    for key in shard_keys:
        held = [without_urls(sample) for sample in samples if sample["__url__"] == s3.uri(key)]
        assert 1 <= len(held) <= 6
        assert object_size(s3, s3.uri(key)) <= 16 * 1024 or len(held) == 1
    assert len(shard_keys) > RAW_SAMPLES // 6  # the size limit cut some shards short


def test_the_pack_command_shows_progress_on_a_terminal(s3, raw):
    terminal, other_end = pty.openpty()
    try:
        done = run_pack(s3, s3.uri("raw/"), s3.uri("shards/"), stderr=other_end)
        os.close(other_end)
        shown = read_terminal(terminal)
    finally:
        os.close(terminal)
    assert done.returncode == 0
    assert f"\rpacked {RAW_SAMPLES} samples into 1 shards" in shown and shown.endswith("\n")
    assert "wrote 1 shards, 40 samples" in done.stdout


def read_terminal(fd) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the writing end is closed and all was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_objects_that_cannot_be_members_are_refused_or_skipped(s3, raw):
    s3.put("raw/README", b"no extension")
    s3.put("raw/a/0001._hidden", b"an extension WebDataset's writer takes for metadata")
    s3.put("raw/__meta__/info.json", b"a name readers skip")
    refused = run_pack(s3, s3.uri("raw/"), s3.uri("shards/"))
    assert refused.returncode == 1
    for key in ("raw/README (no extension", "raw/a/0001._hidden", "raw/__meta__/info.json", "--skip-invalid"):
        assert key in refused.stderr
    assert s3.keys("shards/") == [] and s3.multipart_uploads() == []

    skipped = run_pack(s3, s3.uri("raw/"), s3.uri("shards/"), "--skip-invalid")
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped 3 objects" in skipped.stdout
    assert [without_urls(sample) for sample in read_back(s3)] == raw


def test_many_invalid_objects_are_named_a_few_at_a_time(s3, raw):
    for i in range(8):
        s3.put(f"raw/notes/{i}", b"no extension")
    options = dict(region=s3.region, endpoint=s3.endpoint)
    with pytest.raises(ValueError, match="8 of the .* objects .*raw/notes/0 .*raw/notes/4 .*; and 3 more"):
        pack(s3.uri("raw/"), s3.uri("shards/"), **options)
    result = pack(s3.uri("raw/"), s3.uri("shards/"), skip_invalid=True, **options)
    assert result.samples == RAW_SAMPLES and len(result.skipped) == 8
    assert [shard.uri for shard in result.shards] == [s3.uri("shards/shard-000000.tar")]


@pytest.mark.parametrize(
    "keys, message",
    [
        (["raw/a/0001.jpg", "raw/a/0001.JPG"], "the sample 'a/0001' has two objects with the extension 'jpg'"),
        (
            ["raw/a/0001.cls", "raw/a/0001.d/x.txt", "raw/a/0001.jpg"],
            "the objects of the sample 'a/0001' are not consecutive",
        ),
    ],
)
def test_samples_that_would_not_read_back_are_refused(s3, keys, message):
    for key in keys:
        s3.put(key, b"data")
    with pytest.raises(ValueError, match=message):
        pack(s3.uri("raw/"), s3.uri("shards/"), region=s3.region, endpoint=s3.endpoint)
    assert s3.keys("shards/") == []


def test_pack_refuses_what_would_mix_or_lose_shards(s3, raw):
    options = dict(region=s3.region, endpoint=s3.endpoint)
    with pytest.raises(ValueError, match="is inside the source"):
        pack(s3.uri("raw/"), s3.uri("raw/shards/"), **options)
    with pytest.raises(ValueError, match="nothing to pack under"):
        pack(s3.uri("empty/"), s3.uri("shards/"), **options)
    s3.put("shards/shard-000003.tar", b"an older shard")
    with pytest.raises(ValueError, match="shards/shard-000003.tar already exists"):
        pack(s3.uri("raw/"), s3.uri("shards/"), **options)
    assert s3.keys("shards/") == ["shards/shard-000003.tar"]


def test_pack_arguments_are_checked(s3, capsys):
    with pytest.raises(SystemExit) as bad_size:
        shards_main(["pack", s3.uri("raw/"), s3.uri("shards/"), "--shard-size", "lots"])
    assert bad_size.value.code == 2 and "'lots' is not a size" in capsys.readouterr().err
    assert (
        shards_main(
            [
                "pack",
                s3.uri("raw/"),
                s3.uri("shards/"),
                "--max-count",
                "0",
                "--region",
                s3.region,
                "--endpoint",
                s3.endpoint,
            ]
        )
        == 1
    )
    assert "max_count must be at least 1" in capsys.readouterr().err
    assert s3.keys() == []
