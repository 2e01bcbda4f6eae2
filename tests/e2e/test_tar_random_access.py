"""Random access into tar shards against a real S3 API (moto over HTTP).

S3MapDataset(shard_format="tar") gives every sample as S3IterableDataset(shard_format="tar") yields
it, each with one ranged GET: through the sidecar index ShardWriter (and so `pack`) writes beside
each shard, or through an index made by reading a shard once per node. A sidecar that is damaged or
that describes another version of its shard is not used; a shard written again after it was indexed
fails its reads; compressed shards are refused; DataLoader workers get the index with the dataset.
The iterable skips sidecars without reading them.
"""

import bz2
import collections
import gzip
import io
import json
import logging
import lzma
import random
import tarfile

import numpy
import pytest
import torch
import webdataset
from python_script import run_python
from samples import batch_and_requests, keep_list, key_of_sample, tar_of
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from s3torchconnector import ObjectChangedError, S3ClientConfig, S3IterableDataset, S3MapDataset, ShardWriter
from s3torchconnector.manifest import write_manifest
from s3torchconnector.shards import pack

LONG = "deep/" + "d" * 120 + "/0001"  # longer than a ustar name: a pax header in ShardWriter's shards
SIDECAR = ".index.json"


def written_samples(count=23, seed=0):
    """Samples of several members each, some of them empty, of uneven sizes; a long and a non-ASCII key."""
    rng = random.Random(seed)
    samples = []
    for i in range(count):
        sample = {"__key__": f"train/{i:04d}", "jpg": rng.randbytes(rng.randint(0, 3000)), "cls": i % 7}
        if i % 3 == 0:
            sample["seg.png"] = rng.randbytes(rng.randint(0, 700))
        if i % 5 == 0:
            sample["empty"] = b""
        samples.append(sample)
    samples.append({"__key__": LONG, "txt": "a key longer than ustar's 100 characters"})
    samples.append({"__key__": "übung/éclair", "txt": "Ünïcödé", "bin": b""})
    return samples


def as_read(sample, url):
    """What a reader yields for a sample ShardWriter wrote into the shard ``url``."""
    read = {"__key__": sample["__key__"], "__url__": url}
    for name, value in sample.items():
        if not name.startswith("_"):
            read[name] = value if isinstance(value, bytes) else str(value).encode()
    return read


def write_shards(s3, samples, prefix="shards/", **options):
    with ShardWriter(s3.uri(prefix + "train-%06d.tar"), region=s3.region, endpoint=s3.endpoint, **options) as writer:
        destinations = [writer.write(sample) for sample in samples]
    writer.expected = [as_read(sample, url) for sample, url in zip(samples, destinations)]
    return writer


def key_of(uri):
    return uri.split("/", 3)[3]


def map_dataset(s3, prefix="shards/", **options):
    return S3MapDataset.from_prefix(
        s3.uri(prefix), region=s3.region, endpoint=s3.endpoint, shard_format="tar", **options
    )


def iterable_samples(s3, prefix="shards/", **options):
    dataset = S3IterableDataset.from_prefix(
        s3.uri(prefix), region=s3.region, endpoint=s3.endpoint, shard_format="tar", **options
    )
    return list(dataset)


def every_sample(dataset):
    return [dataset[i] for i in range(len(dataset))]


def gets(dataset, counter="requests"):
    return dataset.metrics()["operations"].get("GetObject", {}).get(counter, 0)


def sidecar_ranges(s3, shard_key):
    return json.loads(s3.get(shard_key + SIDECAR))["samples"]


# ---------------------------------------------------------------- samples, and the sidecars they are read through


def test_every_sample_is_the_iterables_read_through_the_sidecars(s3):
    writer = write_shards(s3, written_samples(), max_count=4, max_size=12_000)
    shard_keys = [key_of(uri) for uri in writer.shard_uris]
    assert len(shard_keys) > 3
    expected = iterable_samples(s3)
    assert expected == writer.expected

    dataset = map_dataset(s3)
    assert len(dataset) == len(expected) == 25
    sidecar_bytes = sum(len(s3.get(key + SIDECAR)) for key in shard_keys)
    assert (gets(dataset), gets(dataset, "bytes")) == (len(shard_keys), sidecar_bytes)  # the sidecars, no shard
    assert every_sample(dataset) == expected
    range_bytes = sum(end - start for key in shard_keys for start, end in sidecar_ranges(s3, key))
    assert gets(dataset) == len(shard_keys) + len(expected)  # then one GET a sample, of its bytes alone
    assert gets(dataset, "bytes") == sidecar_bytes + range_bytes

    order = list(range(len(expected)))
    random.Random(1).shuffle(order)
    assert dataset.__getitems__(order) == [expected[i] for i in order]
    assert dataset[-1] == expected[-1] and dataset[-len(expected)] == expected[0]
    assert dataset[numpy.int64(3)] == dataset[torch.tensor(3)] == expected[3]
    for beyond in (len(expected), -len(expected) - 1):
        with pytest.raises(IndexError):
            dataset[beyond]
    with pytest.raises(TypeError, match="dataset indices must be integers, got float"):
        dataset[1.0]
    keys = map_dataset(s3, transform=key_of_sample)
    assert keys.__getitems__([5, 0]) == [expected[5]["__key__"], expected[0]["__key__"]]


def test_the_sidecar_holds_the_shards_etag_and_each_samples_members(s3):
    writer = write_shards(s3, written_samples(), max_count=6)
    for shard in writer.shards:
        key = key_of(shard.uri)
        sidecar = json.loads(s3.get(key + SIDECAR))
        etag = s3.boto3.head_object(Bucket=s3.bucket, Key=key)["ETag"]
        assert etag.startswith('"') and sidecar["format"] == "s3torchconnector.tar-index" and sidecar["version"] == 1
        assert sidecar["shard"] == {"etag": etag, "size": shard.size}
        # tarfile's view: a member starts at its first header (offset) and ends after its padded data.
        groups = collections.defaultdict(list)
        for member in tarfile.open(fileobj=io.BytesIO(s3.get(key))):
            name = member.name
            groups[name[: name.index(".", name.rfind("/"))]].append(member)
        ranges = [
            [group[0].offset, group[-1].offset_data + -(-group[-1].size // 512) * 512] for group in groups.values()
        ]
        assert sidecar["samples"] == ranges and len(ranges) == shard.samples


def test_shard_format_is_checked(s3):
    with pytest.raises(ValueError, match=r"shard_format must be one of \(None, 'tar'\), got 'zip'"):
        S3MapDataset.from_prefix(s3.uri("shards/"), region=s3.region, endpoint=s3.endpoint, shard_format="zip")


# ---------------------------------------------------------------- shards without sidecars

FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


def tar_with(members, tar_format=tarfile.PAX_FORMAT, global_header=None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format, pax_headers=global_header) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("tar_format", FORMATS)
def test_shards_tarfile_wrote_read_as_the_iterable_reads_them(s3, tar_format):
    """Directories, metadata and names without an extension (before and inside a sample), upper-case
    and double extensions, empty members, long and non-ASCII names; in pax, a global header too."""
    for shard in range(3):
        members = [
            (f"s{shard}/", b""),
            (f"s{shard}/0001.jpg", b"jpeg %d" % shard),
            ("__index__", b"metadata, skipped"),
            (f"s{shard}/0001.CLS", b"3"),
            (f"s{shard}/0001.seg.png", b"mask"),
            ("README", b"no extension, skipped"),
            (f"s{shard}/0002.jpg", b"x" * (600 * shard)),
            (f"s{shard}/0002.txt", b""),
            (f"\u00e9t\u00e9/{shard}.txt", "non-ASCII".encode()),
            ("deep/" + "d" * 120 + f"/{shard}.txt", b"a name split in two, or a long-name header"),
        ]
        if tar_format != "ustar":
            members.append(("n" * 150 + f"{shard}.txt", b"a name no ustar header holds"))
        global_header = {"comment": "for every member"} if tar_format == "pax" else None
        s3.put(f"shards/{shard}.tar", tar_with(members, FORMATS[tar_format], global_header))
    expected = iterable_samples(s3)
    assert len(expected) == (4 if tar_format == "ustar" else 5) * 3
    dataset = map_dataset(s3)
    assert len(dataset) == len(expected)
    assert every_sample(dataset) == expected


def test_shards_webdataset_wrote_read_as_the_iterable_reads_them(s3, tmp_path):
    for shard in range(3):
        path = tmp_path / f"{shard}.tar"
        with webdataset.TarWriter(str(path)) as sink:
            for i in range(5):
                sink.write({"__key__": f"w{shard}/{i:03d}", "txt": f"text {i}", "cls": str(i), "bin": bytes(100 * i)})
        s3.put(f"shards/{shard}.tar", path.read_bytes())
    expected = iterable_samples(s3)
    dataset = map_dataset(s3)
    assert len(dataset) == len(expected) == 15
    assert every_sample(dataset) == expected


def test_without_sidecars_each_shard_is_read_once_to_index_it(s3):
    writer = write_shards(s3, written_samples(), max_count=5, write_index=False)
    assert s3.keys() == [key_of(uri) for uri in writer.shard_uris]  # no sidecar
    dataset = map_dataset(s3)
    assert len(dataset) == len(writer.expected)
    assert (gets(dataset), gets(dataset, "bytes")) == (len(writer.shards), sum(shard.size for shard in writer.shards))
    assert every_sample(dataset) == writer.expected


INDEX_IN_ANOTHER_PROCESS = """
import sys
from s3torchconnector import S3MapDataset
endpoint, uri = sys.argv[1:]
dataset = S3MapDataset.from_prefix(uri, region="us-east-1", endpoint=endpoint, shard_format="tar")
count = len(dataset)
last = dataset[count - 1]["__key__"]
print(count, dataset.metrics()["operations"].get("GetObject", {}).get("requests", 0), last)
"""


def test_a_shard_is_read_to_index_it_once_per_node(s3):
    writer = write_shards(s3, written_samples(), max_count=5, write_index=False)
    first = map_dataset(s3)
    assert len(first) == len(writer.expected) and gets(first) == len(writer.shards)

    second = map_dataset(s3)  # another dataset of this process: the node's index, no GET
    assert len(second) == len(first) and gets(second) == 0
    assert every_sample(second) == writer.expected and gets(second) == len(writer.expected)

    done = run_python(INDEX_IN_ANOTHER_PROCESS, s3.endpoint, s3.uri("shards/"), timeout=120)
    assert done.returncode == 0, done.stderr
    # Another process: its one GET is of the sample it read.
    assert done.stdout.split() == [str(len(first)), "1", writer.expected[-1]["__key__"]]


def test_with_the_node_cache_on_the_index_is_kept_in_it(s3, tmp_path):
    cache = tmp_path / "cache"
    config = S3ClientConfig(cache_dir=str(cache))
    writer = write_shards(s3, written_samples(), max_count=5, write_index=False)
    first = map_dataset(s3, s3client_config=config)
    assert len(first) == len(writer.expected) and gets(first) == len(writer.shards)
    assert len(list(cache.rglob("*.derived"))) == len(writer.shards)

    second = map_dataset(s3, s3client_config=config)
    assert len(second) == len(first)
    assert gets(second) == 0 and second.metrics()["cache"]["hits"] == 0  # its index, not its shard, from disk
    # The shards themselves came into the cache when they were indexed: their samples are read from it.
    assert every_sample(second) == writer.expected and gets(second) == 0


# ---------------------------------------------------------------- sidecars that are not used


def test_a_sidecar_of_another_version_of_its_shard_is_not_used(s3, caplog):
    writer = write_shards(s3, written_samples(), max_count=5)
    keys = [key_of(uri) for uri in writer.shard_uris]
    # Written again by other tools, the sidecars left as they were: another layout, and the same size.
    s3.put(keys[1], tar_of([("new/1.txt", b"one"), ("new/2.txt", b"two" * 1000), ("new/3.txt", b"")]))
    same_size = bytearray(s3.get(keys[3]))
    member = next(m for m in tarfile.open(fileobj=io.BytesIO(bytes(same_size))) if m.size)
    same_size[member.offset_data] ^= 0xFF  # a byte of a member's data
    s3.put(keys[3], bytes(same_size))
    expected = iterable_samples(s3)
    assert [sample["__key__"] for sample in expected if sample["__url__"] == s3.uri(keys[1])] == [
        "new/1",
        "new/2",
        "new/3",
    ]

    with caplog.at_level(logging.WARNING, logger="s3torchconnector"):
        dataset = map_dataset(s3)
        assert len(dataset) == len(expected)
    assert every_sample(dataset) == expected
    stale = [record.getMessage() for record in caplog.records if "another version" in record.getMessage()]
    assert len(stale) == 1  # said once
    assert "2 sidecar indexes" in stale[0] and s3.uri(keys[1] + SIDECAR) in stale[0] and s3.uri(keys[3]) in stale[0]
    # Every sidecar was fetched, the two shards read whole to index them, then one GET a sample.
    assert gets(dataset) == len(keys) + 2 + len(expected)


def document_edit(change):
    def damage(document):
        change(document)
        return json.dumps(document).encode()

    return damage


DAMAGES = {
    "not-json": (lambda document: json.dumps(document).encode()[:-30], "not JSON"),
    "not-an-object": (lambda document: b"[1, 2]", "not a JSON object"),
    "other-format": (document_edit(lambda d: d.update(format="wids")), "its format is 'wids'"),
    "newer-version": (document_edit(lambda d: d.update(version=2)), "this reader reads version 1"),
    "version-true": (document_edit(lambda d: d.update(version=True)), "this reader reads version 1"),
    "etag-a-number": (document_edit(lambda d: d["shard"].update(etag=5)), 'it has no "shard"'),
    "size-missing": (document_edit(lambda d: d["shard"].pop("size")), "the shard's size is None"),
    "no-samples": (document_edit(lambda d: d.pop("samples")), 'it has no "samples" list'),
    "a-bool-offset": (document_edit(lambda d: d["samples"][0].__setitem__(0, False)), "sample 0 is [False"),
    "three-numbers": (
        document_edit(lambda d: d["samples"][1].append(5)),
        "sample 1 is [",
    ),
    "overlapping": (
        document_edit(lambda d: d["samples"][1].__setitem__(0, d["samples"][0][1] - 512)),
        "ranges must increase without overlapping",
    ),
    "past-the-end": (document_edit(lambda d: d["samples"][-1].__setitem__(1, d["shard"]["size"] + 512)), "within"),
    "unaligned": (document_edit(lambda d: d["samples"][0].__setitem__(1, d["samples"][0][1] - 1)), "multiples of 512"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_sidecar_is_ignored_with_a_warning(s3, caplog, damage):
    writer = write_shards(s3, written_samples(10), max_count=4)
    key = key_of(writer.shard_uris[1])
    change, reason = DAMAGES[damage]
    s3.put(key + SIDECAR, change(json.loads(s3.get(key + SIDECAR))))
    with caplog.at_level(logging.WARNING, logger="s3torchconnector"):
        dataset = map_dataset(s3)
        assert every_sample(dataset) == writer.expected
    (warning,) = [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and record.name.startswith("s3torchconnector")
    ]
    assert "damaged" in warning and s3.uri(key + SIDECAR) in warning and reason in warning


def test_a_sidecar_whose_ranges_are_not_samples_fails_the_read_saying_so(s3):
    writer = write_shards(s3, written_samples(8), max_count=5)
    key = key_of(writer.shard_uris[0])
    sidecar = json.loads(s3.get(key + SIDECAR))
    (first, _), (_, second_end) = sidecar["samples"][:2]
    sidecar["samples"][:2] = [[first, second_end]]  # well formed, but two samples in one range
    s3.put(key + SIDECAR, json.dumps(sidecar).encode())
    dataset = map_dataset(s3)
    assert len(dataset) == len(writer.expected) - 1
    with pytest.raises(ValueError) as refused:
        dataset[0]
    assert str(refused.value) == (
        f"{s3.uri(key)}: the bytes [{first}, {second_end}) that its sidecar index {s3.uri(key + SIDECAR)} gives for "
        "a sample are not one sample (they hold 2 samples): write the sidecar again, or delete it (the shard is "
        "then indexed by reading it)"
    )
    assert dataset[1] == writer.expected[2]


# ---------------------------------------------------------------- what cannot be read at random


@pytest.mark.parametrize(
    "compress, compressor", [(gzip.compress, "gzip"), (bz2.compress, "bzip2"), (lzma.compress, "xz")]
)
def test_compressed_shards_are_refused_saying_why_and_what_to_do(s3, compress, compressor):
    s3.put("shards/a.tar", tar_of([("a/1.txt", b"one")]))
    s3.put("shards/b.tar.z", compress(tar_of([("b/1.txt", b"two")])))
    assert [sample["__key__"] for sample in iterable_samples(s3)] == ["a/1", "b/1"]  # which streams them
    with pytest.raises(ValueError) as refused:
        len(map_dataset(s3))
    message = str(refused.value)
    assert message.startswith(f"{s3.uri('shards/b.tar.z')} is a {compressor}-compressed tar")
    for advice in ("cannot be read at random", "S3IterableDataset(shard_format='tar')", "repack it as a plain tar"):
        assert advice in message


def test_a_damaged_shard_is_refused_by_name_and_offset(s3):
    good = tar_of([("a/1.txt", b"one"), ("a/2.txt", b"two")])
    s3.put("shards/bad.tar", good[:1024] + b"b" + good[1025:])
    with pytest.raises(ValueError) as refused:
        len(map_dataset(s3))
    assert str(refused.value) == (
        f"{s3.uri('shards/bad.tar')} is not a readable tar shard: a damaged member header (bad checksum) "
        "(at byte 1024); it cannot be indexed"
    )


def test_a_global_pax_header_that_names_members_is_refused(s3):
    """A range read would not see it: the member after it reads as g/1.txt in a stream, as x.bin alone."""
    s3.put("shards/global.tar", tar_with([("x.bin", b"data")], global_header={"path": "g/1.txt"}))
    assert iterable_samples(s3) == [{"__key__": "g/1", "__url__": s3.uri("shards/global.tar"), "txt": b"data"}]
    with pytest.raises(ValueError) as refused:
        len(map_dataset(s3))
    message = str(refused.value)
    assert message.startswith(f"{s3.uri('shards/global.tar')} cannot be read at random: its global pax header")
    assert "at byte 0 sets path" in message and "S3IterableDataset(shard_format='tar')" in message


def test_a_shard_written_again_after_it_was_indexed_fails_its_reads(s3):
    writer = write_shards(s3, written_samples(8), max_count=5)
    dataset = map_dataset(s3, transform=key_of_sample)
    assert len(dataset) == 10
    s3.put("shards/train-000000.tar", tar_of([("other/1.txt", b"other bytes at other offsets")]))
    with pytest.raises(ObjectChangedError) as refused:
        dataset[1]
    message = str(refused.value)
    assert s3.uri("shards/train-000000.tar") in message and "changed since the dataset indexed it" in message
    assert dataset[7] == writer.expected[7]["__key__"]  # the other shard is as it was


# ---------------------------------------------------------------- other sources, and DataLoader workers


def test_manifests_and_lists_of_uris_find_the_sidecars(s3):
    writer = write_shards(s3, written_samples(), max_count=6)
    shards = len(writer.shards)
    options = dict(region=s3.region, endpoint=s3.endpoint, shard_format="tar")
    write_manifest(s3.uri("shards/"), s3.uri("m.jsonl"), region=s3.region, endpoint=s3.endpoint)
    from_manifest = S3MapDataset.from_manifest(s3.uri("m.jsonl"), **options)
    assert len(from_manifest) == len(writer.expected) and gets(from_manifest) == 1 + shards  # the manifest, sidecars
    assert every_sample(from_manifest) == writer.expected

    from_uris = S3MapDataset.from_objects(writer.shard_uris, **options)  # sidecars not named: each one asked for
    assert len(from_uris) == len(writer.expected)
    operations = from_uris.metrics()["operations"]
    assert operations["HeadObject"]["requests"] == shards and operations["GetObject"]["requests"] == shards
    assert every_sample(from_uris) == writer.expected

    bare = write_shards(s3, written_samples(), prefix="bare/", max_count=6, write_index=False)
    without = S3MapDataset.from_objects(bare.shard_uris, **options)  # each sidecar asked for, found missing
    assert len(without) == len(bare.expected)
    assert gets(without) == 2 * len(bare.shards) and gets(without, "failed") == len(bare.shards)
    assert every_sample(without) == bare.expected


@pytest.mark.parametrize("context", ["fork", "spawn", "forkserver"])
def test_every_sample_once_per_epoch_through_dataloader_workers(s3, context):
    writer = write_shards(s3, written_samples(30), max_count=7)
    keys = [sample["__key__"] for sample in writer.expected]
    dataset = map_dataset(s3, transform=key_of_sample)
    sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(
        dataset,
        batch_size=4,
        sampler=sampler,
        num_workers=2,
        collate_fn=batch_and_requests,
        multiprocessing_context=context,
        timeout=120,
    )
    seen = []
    read_by = collections.Counter()
    for worker, batch, requests in loader:
        read_by[worker] += len(batch)
        # A worker's only requests are its samples' GETs: it listed nothing and read no index.
        assert requests == {"GetObject": read_by[worker]}
        seen += batch
    assert collections.Counter(seen) == collections.Counter(keys) and len(seen) == len(keys)
    assert seen != keys and set(read_by) == {0, 1}


def test_ranks_of_a_distributed_sampler_read_every_sample_once(s3):
    writer = write_shards(s3, written_samples(30), max_count=7)
    keys = [sample["__key__"] for sample in writer.expected]
    dataset = map_dataset(s3, transform=key_of_sample)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=4)
        sampler.set_epoch(3)
        loader = DataLoader(dataset, batch_size=5, sampler=sampler, num_workers=2, collate_fn=keep_list, timeout=120)
        seen += [key for batch in loader for key in batch]
    assert sorted(seen) == sorted(keys) and seen != keys


# ---------------------------------------------------------------- the iterable and pack beside sidecars


def test_the_iterable_skips_sidecars_without_reading_them(s3):
    writer = write_shards(s3, written_samples(), max_count=5)
    assert len(s3.keys()) == 2 * len(writer.shards)
    dataset = S3IterableDataset.from_prefix(
        s3.uri("shards/"), region=s3.region, endpoint=s3.endpoint, shard_format="tar"
    )
    assert list(dataset) == writer.expected
    assert (gets(dataset), gets(dataset, "bytes")) == (len(writer.shards), sum(shard.size for shard in writer.shards))

    # A state saved within a pass counts the sidecars' positions as it always did: it resumes there.
    iterator = iter(dataset)
    before = [next(iterator) for _ in range(8)]
    resumed = S3IterableDataset.from_prefix(
        s3.uri("shards/"), region=s3.region, endpoint=s3.endpoint, shard_format="tar"
    )
    resumed.load_state_dict(iterator.state_dict())
    assert before + list(resumed) == writer.expected


def test_pack_writes_sidecars_that_random_access_reads(s3):
    rng = random.Random(5)
    for i in range(20):
        s3.put(f"raw/{i:03d}.jpg", rng.randbytes(rng.randint(0, 2000)))
        s3.put(f"raw/{i:03d}.cls", str(i % 3).encode())
    options = dict(region=s3.region, endpoint=s3.endpoint)
    result = pack(s3.uri("raw/"), s3.uri("packed/"), max_count=6, **options)
    shard_keys = [key_of(shard.uri) for shard in result.shards]
    assert len(shard_keys) == 4
    assert s3.keys("packed/") == sorted(key + suffix for key in shard_keys for suffix in ("", SIDECAR))

    dataset = map_dataset(s3, "packed/")
    assert len(dataset) == 20 and gets(dataset) == len(shard_keys)  # the sidecars only
    assert every_sample(dataset) == iterable_samples(s3, "packed/")

    s3.put("other/shard-000000.tar.index.json", b"{}")  # a destination with a sidecar is not unused
    with pytest.raises(ValueError, match="other/shard-000000.tar.index.json already exists"):
        pack(s3.uri("raw/"), s3.uri("other/"), **options)
