"""Tar shards against a real S3 API (moto over HTTP): S3IterableDataset(shard_format="tar") yields
what the webdataset package yields for the same shards, splits and shuffles them across DataLoader
workers, streams a shard in bounded memory, and refuses damaged shards by name and byte offset."""

import collections
import gzip
import io
import tarfile

import pytest
import webdataset
from python_script import run_python
from samples import keep_list, key_of_sample, patched_header, tar_member, tar_of
from torch.utils.data import DataLoader

from s3torchconnector import S3IterableDataset
from s3torchconnector.manifest import write_manifest

LONG = "deep/" + "d" * 120 + "/sample"  # longer than a ustar name: a pax or GNU long-name header
ODD_MEMBERS = [
    ("train/", b""),
    ("train/0001.jpg", b"jpeg 1"),
    ("train/0001.CLS", b"3"),
    ("train/0001.seg.png", b"mask 1"),
    ("__index__", b"metadata, skipped"),
    ("README", b"no extension, skipped"),
    ("train/0002.jpg", b"jpeg 2"),
    ("train/0002.cls", b"7"),
    (LONG + ".txt", b"a long name"),
    ("train/0003.json", b'{"a": 1}'),
]


def samples(uri, s3, **options):
    return list(
        S3IterableDataset.from_prefix(uri, region=s3.region, endpoint=s3.endpoint, shard_format="tar", **options)
    )


def webdataset_samples(path, url):
    """What webdataset yields for the shard at `path`, as if read from `url`."""
    found = []
    for sample in webdataset.WebDataset(str(path), shardshuffle=False, empty_check=False):
        sample.pop("__local_path__", None)
        sample["__url__"] = url
        found.append(sample)
    return found


@pytest.mark.parametrize("compress", [False, True])
def test_samples_equal_what_webdataset_yields(s3, tmp_path, compress):
    shard = tar_of(ODD_MEMBERS)
    name = "shards/odd.tar.gz" if compress else "shards/odd.tar"
    body = gzip.compress(shard) if compress else shard
    s3.put(name, body)
    (tmp_path / "odd").write_bytes(body)

    ours = samples(s3.uri("shards/"), s3)
    assert ours == webdataset_samples(tmp_path / "odd", s3.uri(name))
    assert [sample["__key__"] for sample in ours] == ["train/0001", "train/0002", LONG, "train/0003"]
    assert ours[0] == {
        "__key__": "train/0001",
        "__url__": s3.uri(name),
        "jpg": b"jpeg 1",
        "cls": b"3",
        "seg.png": b"mask 1",
    }


FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
@pytest.mark.parametrize("tar_format", FORMATS)
def test_each_tar_format_and_compression_reads_as_webdataset_reads_it(s3, tmp_path, tar_format, compression):
    """ustar (a long name split into its prefix field), GNU (long-name headers) and pax (a global
    header, and long or non-ASCII names in per-member headers), each plain and compressed."""
    members = [
        ("deep/" + "d" * 120 + "/0001.jpg", b"a name split in two"),
        ("deep/" + "d" * 120 + "/0001.cls", b"1"),
        ("\u00e9t\u00e9/0002.jpg", b"a non-ASCII name"),
        ("links/", b""),
    ]
    if tar_format != "ustar":  # a name no ustar header can hold
        members.append(("n" * 150 + ".txt", b"a long name"))
    buffer = io.BytesIO()
    global_header = {"comment": "for every member"} if tar_format == "pax" else None
    with tarfile.open(
        fileobj=buffer, mode=f"w:{compression}", format=FORMATS[tar_format], pax_headers=global_header
    ) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("links/0001.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "../deep/0001.jpg"  # not a regular file: skipped
        tar.addfile(link)
    name = f"shards/{tar_format}.tar{'.' + compression if compression else ''}"
    s3.put(name, buffer.getvalue())
    (tmp_path / "shard").write_bytes(buffer.getvalue())

    ours = samples(s3.uri("shards/"), s3)
    assert ours == webdataset_samples(tmp_path / "shard", s3.uri(name))
    keys = ["deep/" + "d" * 120 + "/0001", "\u00e9t\u00e9/0002"] + (["n" * 150] if tar_format != "ustar" else [])
    assert [sample["__key__"] for sample in ours] == keys
    assert ours[0]["jpg"] == b"a name split in two" and ours[1]["jpg"] == b"a non-ASCII name"


def test_hand_made_headers_read_as_tarfile_reads_them(s3, tmp_path):
    """A pax size that overrides its header's, and a checksum of signed bytes: the same samples as
    webdataset's; a sparse member is refused by name of the problem."""
    five = tar_member("p/1.txt", b"12345", pax_headers={"size": "5"})
    five = five[:1024] + patched_header(five[1024:1536], 124, b"00000000001\0") + five[1536:]  # the header's size: 1
    signed = tar_member("p/2.txt", b"signed")
    signed = patched_header(signed[:512], 0, "p/2\u00e9.txt".encode() + b"\0", signed_checksum=True) + signed[512:]
    body = five + signed + bytes(1024)
    s3.put("hand/shard.tar", body)
    (tmp_path / "shard").write_bytes(body)
    ours = samples(s3.uri("hand/"), s3)
    assert ours == webdataset_samples(tmp_path / "shard", s3.uri("hand/shard.tar"))
    assert [(sample["__key__"], sample["txt"]) for sample in ours] == [("p/1", b"12345"), ("p/2\u00e9", b"signed")]

    sparse = tar_member("q/1.txt", b"x")
    s3.put("sparse/shard.tar", patched_header(sparse[:512], 156, b"S") + sparse[512:] + bytes(1024))
    with pytest.raises(ValueError, match="shard.tar is not a readable tar shard: a sparse member.*at byte 0"):
        samples(s3.uri("sparse/"), s3)


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_every_sample_once_across_dataloader_workers(s3, context):
    expected = []
    for shard in range(7):
        names = [f"s{shard}/{i:02d}" for i in range(shard + 2)]  # uneven shards
        s3.put(f"shards/{shard:02d}.tar", tar_of([(f"{n}.txt", n.encode()) for n in names]))
        expected += names
    dataset = S3IterableDataset.from_prefix(
        s3.uri("shards/"),
        region=s3.region,
        endpoint=s3.endpoint,
        shard_format="tar",
        transform=key_of_sample,
        enable_sharding=True,
        shuffle=True,
        seed=5,
        shuffle_buffer_size=3,
    )
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=keep_list, multiprocessing_context=context)
    seen = [key for batch in loader for key in batch]
    assert collections.Counter(seen) == collections.Counter(expected)
    assert seen != sorted(seen)


def test_a_manifest_of_shards(s3):
    s3.put("shards/a.tar", tar_of([("x/1.txt", b"1"), ("x/2.txt", b"2")]))
    s3.put("shards/b.tar", tar_of([("y/1.txt", b"3")]))
    write_manifest(s3.uri("shards/"), s3.uri("shards.jsonl"), region=s3.region, endpoint=s3.endpoint)
    dataset = S3IterableDataset.from_manifest(
        s3.uri("shards.jsonl"), region=s3.region, endpoint=s3.endpoint, shard_format="tar", transform=key_of_sample
    )
    assert list(dataset) == ["x/1", "x/2", "y/1"]


GOOD = tar_of([("a/1.txt", b"one"), ("a/2.txt", b"two"), ("a/3.txt", b"three" * 300)])
PAX_ONLY = tar_member("a/2.txt", b"", pax_headers={"comment": "c"})[:-512]  # a member's pax header, not the member


@pytest.mark.parametrize(
    "body, read_before, problem",
    [
        (GOOD[:2048], ["a/1"], "truncated"),  # cut between members: tarfile alone would end quietly
        (GOOD[:1600], ["a/1"], "unexpected end of data"),  # cut inside a member's data
        (GOOD[:1024] + b"x" * 512 + GOOD[1536:], [], "at byte 1024"),  # a damaged header
        (GOOD[:1024] + b"b" + GOOD[1025:], [], "a damaged member header (bad checksum) (at byte 1024)"),
        (GOOD[:1024] + PAX_ONLY + bytes(1024), [], "ends after a pax or long-name header, without its member"),
        (b"this is not a tar file at all" * 40, [], "at byte 0"),
        (b"", [], "at byte 0"),
    ],
    ids=["cut-at-header", "cut-in-member", "bad-header", "bad-checksum", "pax-header-alone", "not-tar", "empty"],
)
def test_damaged_shards_fail_by_name_and_offset(s3, body, read_before, problem):
    s3.put("bad/shard.tar", body)
    iterator = iter(
        S3IterableDataset.from_prefix(
            s3.uri("bad/"), region=s3.region, endpoint=s3.endpoint, shard_format="tar", transform=key_of_sample
        )
    )
    got = []
    with pytest.raises(ValueError) as refused:
        for key in iterator:
            got.append(key)
    assert got == read_before  # whole samples only: never the one being read when it broke
    message = str(refused.value)
    assert s3.uri("bad/shard.tar") in message and "not a readable tar shard" in message and problem in message


def test_a_large_shard_streams_in_bounded_memory(s3, tmp_path):
    """160 MiB of 4 MiB samples in one shard: the reader's peak memory stays far below the shard."""
    member = b"\xab" * (4 << 20)
    path = tmp_path / "big.tar"
    with tarfile.open(path, mode="w") as tar:
        for i in range(40):
            info = tarfile.TarInfo(f"big/{i:03d}.bin")
            info.size = len(member)
            tar.addfile(info, io.BytesIO(member))
    s3.boto3.upload_file(str(path), s3.bucket, "big/shard.tar")
    done = run_python(
        """
        import sys
        from s3torchconnector import S3IterableDataset

        def vm(field):
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith(field)) // 1024

        endpoint, uri = sys.argv[1:3]
        samples = iter(S3IterableDataset.from_prefix(uri, region="us-east-1", endpoint=endpoint, shard_format="tar"))
        first = next(samples)  # the client, its threads and the first request are up
        before = vm("VmRSS:")
        count = 1 + sum(1 for sample in samples if len(sample["bin"]) == 4 << 20)
        print(count, vm("VmHWM:") - before)
        """,
        s3.endpoint,
        s3.uri("big/"),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    count, growth_mib = map(int, done.stdout.split())
    assert count == 40
    assert growth_mib < 110, f"peak memory grew {growth_mib} MiB while streaming a 160 MiB shard"
