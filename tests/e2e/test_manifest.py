"""Listing manifests against a real S3 API (moto over HTTP): written once from a prefix (JSON Lines,
gzip for .gz, also by the command), read with one GET by both dataset kinds, each object read at
the version the manifest recorded, and bad manifests refused before any sample is read."""

import gzip
import hashlib
import io
import json
import pickle
import subprocess
import sys
from itertools import islice

import pytest
from samples import key_and_bytes

from s3torchconnector import S3Exception, S3IterableDataset, S3MapDataset
from s3torchconnector._epochs.iterator import LazyListing
from s3torchconnector._epochs.state import Listing
from s3torchconnector.manifest import main as manifest_main
from s3torchconnector.manifest import write_manifest

N = 25


@pytest.fixture
def objects(s3):
    uploaded = {f"train/{i:03d}.bin": f"sample {i} ".encode() * (i + 1) for i in range(N)}
    for key, body in uploaded.items():
        s3.put(key, body)
    s3.put("elsewhere/x.bin", b"not under the prefix")
    return uploaded


HEADER = b'{"s3torchconnector_manifest":1,"bucket":"b","prefix":""}\n'


def options(s3, **more):
    return dict(region=s3.region, endpoint=s3.endpoint, transform=key_and_bytes, **more)


@pytest.mark.parametrize("name", ["manifest.jsonl", "manifests/train.jsonl.gz"])
def test_write_then_read_a_manifest(s3, objects, name):
    counts = []
    assert (
        write_manifest(s3.uri("train/"), s3.uri(name), region=s3.region, endpoint=s3.endpoint, progress=counts.append)
        == N
    )
    assert counts[-1] == N
    raw = s3.get(name)
    text = gzip.decompress(raw) if name.endswith(".gz") else raw
    lines = [json.loads(line) for line in text.decode().splitlines()]
    assert lines[0] == {"s3torchconnector_manifest": 1, "bucket": s3.bucket, "prefix": "train/"}
    listed = {o["Key"]: o for o in s3.boto3.list_objects_v2(Bucket=s3.bucket, Prefix="train/")["Contents"]}
    assert [(e["key"], e["size"], e["etag"]) for e in lines[1:]] == [
        (key, listed[key]["Size"], listed[key]["ETag"]) for key in sorted(objects)
    ]

    mapped = S3MapDataset.from_manifest(s3.uri(name), **options(s3))
    assert [mapped[i] for i in range(len(mapped))] == sorted(objects.items())
    iterated = S3IterableDataset.from_manifest(s3.uri(name), **options(s3, shuffle=True, seed=1))
    assert sorted(iterated) == sorted(objects.items())


def test_every_accepted_line_form_reads_its_object(s3, objects):
    """Hand-written manifests need not look like write_manifest's: spacing, blank lines, CRLF, extra
    fields, no size or ETag, and "uri" entries beside "key" entries all read the objects they name."""
    size = {key: len(body) for key, body in objects.items()}
    etag = s3.boto3.head_object(Bucket=s3.bucket, Key="train/000.bin")["ETag"]
    lines = [
        f'{{"s3torchconnector_manifest": 1, "bucket": "{s3.bucket}"}}',
        json.dumps({"key": "train/000.bin", "size": size["train/000.bin"], "etag": etag}, separators=(",", ":")),
        f'{{"key": "train/001.bin", "size": {size["train/001.bin"]}}}',
        "",
        '  {"key":"train/002.bin"}  ',
        f'{{"uri":"s3://{s3.bucket}/train/003.bin","size":{size["train/003.bin"]}}}',
        f'{{"key":"train/004.bin","size":{size["train/004.bin"]},"etag":"","extra":"ignored"}}\r',
        '{"key":"train/005.bin"}',
    ]
    s3.put("forms.jsonl", "\n".join(lines).encode())  # and no newline after the last line
    dataset = S3MapDataset.from_manifest(s3.uri("forms.jsonl"), **options(s3))
    expected = [f"train/{i:03d}.bin" for i in range(6)]
    assert [dataset[i] for i in range(len(dataset))] == [(key, objects[key]) for key in expected]


def test_a_manifest_of_uris_spans_buckets(s3, objects):
    other = f"{s3.bucket}-b"
    s3.boto3.create_bucket(Bucket=other)
    s3.boto3.put_object(Bucket=other, Key="far.bin", Body=b"far away")
    entries = [{"uri": s3.uri("train/000.bin")}, {"uri": f"s3://{other}/far.bin", "size": 8}]
    s3.put("uris.jsonl", "".join(json.dumps(e) + "\n" for e in entries).encode())
    assert list(S3IterableDataset.from_manifest(s3.uri("uris.jsonl"), **options(s3))) == [
        ("train/000.bin", objects["train/000.bin"]),
        ("far.bin", b"far away"),
    ]


@pytest.mark.parametrize("kind", [S3MapDataset, S3IterableDataset])
def test_an_object_changed_since_the_manifest_fails_naming_both(s3, objects, kind):
    write_manifest(s3.uri("train/"), s3.uri("m.jsonl"), region=s3.region, endpoint=s3.endpoint)
    s3.put("train/003.bin", b"rewritten after the manifest")
    dataset = kind.from_manifest(s3.uri("m.jsonl"), **options(s3))
    samples = iter(dataset) if kind is S3IterableDataset else (dataset[i] for i in range(len(dataset)))
    assert list(islice(samples, 3)) == sorted(objects.items())[:3]
    with pytest.raises(S3Exception) as refused:
        next(samples)
    message = str(refused.value)
    assert s3.uri("train/003.bin") in message and s3.uri("m.jsonl") in message
    assert refused.value.code == "PreconditionFailed" and refused.value.status == 412


def test_a_resumed_pass_refuses_a_rewritten_manifest(s3, objects):
    write_manifest(s3.uri("train/"), s3.uri("m.jsonl"), region=s3.region, endpoint=s3.endpoint)
    iterator = iter(S3IterableDataset.from_manifest(s3.uri("m.jsonl"), **options(s3, shuffle=True)))
    list(islice(iterator, 5))
    state = iterator.state_dict()
    s3.put("train/999.bin", b"one more")
    write_manifest(s3.uri("train/"), s3.uri("m.jsonl"), region=s3.region, endpoint=s3.endpoint)
    resumed = iter(S3IterableDataset.from_manifest(s3.uri("m.jsonl"), **options(s3, shuffle=True)))
    resumed.load_state_dict(state)
    with pytest.raises(ValueError, match=f"{N} objects when the state was saved, {N + 1} now"):
        next(resumed)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "lists no objects"),
        (b'{"s3torchconnector_manifest": 1, "bucket": "b"}\n', "lists no objects"),
        (b'{"uri": "s3://b/k"}\nnot json\n', "line 2: not JSON"),
        (b'{"uri": "s3://b/k"}\n[1, 2]\n', "line 2: not a JSON object"),
        (b'{"key": "k", "size": 1}\n', 'line 1: a "key" needs a first header line'),
        (b'{"uri": "https://b/k"}\n', "line 1: .*is not an S3 URI"),
        (b'{"uri": "s3://b"}\n', "line 1: the object key is empty"),
        (b'{"uri": "s3://b/k", "size": -1}\n', "line 1: size must be a non-negative integer"),
        (b'{"uri": "s3://b/k", "etag": 5}\n', "line 1: etag must be a string"),
        (b'{"size": 1}\n', 'line 1: no "uri" or "key"'),
        (
            b'{"uri": "s3://b/k"}\n{"s3torchconnector_manifest": 1, "bucket": "b"}\n',
            "line 2: a header line is only allowed first",
        ),
        # Lines in the shape write_manifest writes (after a header), which a faster parse takes first.
        (HEADER + b'{"key":"a","size":1}{"key":"b","size":2}\n', "line 2: not JSON"),
        (HEADER + b'{"key":"a","size":true,"etag":""}\n', "line 2: size must be a non-negative integer"),
        (HEADER + b'{"key":"a","size":-1,"etag":""}\n', "line 2: size must be a non-negative integer"),
        (HEADER + b'{"key":"","size":1,"etag":""}\n', "line 2: the object key is empty"),
        (HEADER + b'{"key":"a","size":1,"etag":5}\n', "line 2: etag must be a string"),
        (HEADER + b'{"key":"a","size":1,"etag":""}\n' + HEADER, "line 3: a header line is only allowed first"),
    ],
)
def test_bad_manifests_are_refused_before_any_sample(s3, content, message):
    s3.put("bad.jsonl", content)
    with pytest.raises(ValueError, match=message) as refused:
        len(S3MapDataset.from_manifest(s3.uri("bad.jsonl"), **options(s3)))
    assert s3.uri("bad.jsonl") in str(refused.value)
    with pytest.raises(ValueError, match=message):
        next(iter(S3IterableDataset.from_manifest(s3.uri("bad.jsonl"), **options(s3))))


def test_a_missing_or_unreadable_manifest_is_refused(s3):
    with pytest.raises(S3Exception, match="cannot read the manifest .*missing.jsonl.*NoSuchKey") as missing:
        len(S3MapDataset.from_manifest(s3.uri("missing.jsonl"), **options(s3)))
    assert missing.value.code == "NoSuchKey"
    s3.put("plain.jsonl.gz", b'{"uri": "s3://b/k"}\n')
    with pytest.raises(ValueError, match="not readable JSON Lines \\(gzip\\)"):
        len(S3MapDataset.from_manifest(s3.uri("plain.jsonl.gz"), **options(s3)))
    with pytest.raises(ValueError, match="names a bucket"):
        S3MapDataset.from_manifest(f"s3://{s3.bucket}", **options(s3))


def test_an_empty_prefix_writes_no_manifest(s3):
    with pytest.raises(ValueError, match="no objects under"):
        write_manifest(s3.uri("nothing/"), s3.uri("m.jsonl"), region=s3.region, endpoint=s3.endpoint)
    assert s3.keys() == [] and s3.multipart_uploads() == []


def test_the_command_writes_a_manifest(s3, objects):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "s3torchconnector.manifest",
            s3.uri("train/"),
            s3.uri("cli.jsonl.gz"),
            "--region",
            s3.region,
            "--endpoint",
            s3.endpoint,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"{N} objects" in done.stdout
    assert len(gzip.decompress(s3.get("cli.jsonl.gz")).splitlines()) == N + 1


def test_the_manifest_command_in_process(s3, capsys):
    """manifest.main: test_manifest.py runs it as ``python -m``, where the module is __main__ (and a
    mutant of s3torchconnector.manifest never active). Called here: its arguments reach
    write_manifest, it prints what it wrote, returns 0, and the manifest reads back."""
    for i in range(3):
        s3.put(f"train/{i}.bin", bytes([i]) * (i + 1))
    s3.put("other/x.bin", b"not listed")

    assert (
        manifest_main([s3.uri("train/"), s3.uri("m/train.jsonl.gz"), "--region", s3.region, "--endpoint", s3.endpoint])
        == 0
    )
    written = capsys.readouterr()
    assert written.out == f"wrote {s3.uri('m/train.jsonl.gz')}: 3 objects\n"
    assert written.err == ""  # not a terminal: no progress line

    lines = gzip.decompress(s3.get("m/train.jsonl.gz")).decode().splitlines()
    entries = [json.loads(line) for line in lines[1:]]  # after the header line
    assert [entry["key"] for entry in entries] == ["train/0.bin", "train/1.bin", "train/2.bin"]
    dataset = S3MapDataset.from_manifest(
        s3.uri("m/train.jsonl.gz"), region=s3.region, endpoint=s3.endpoint, transform=lambda r: r.read()
    )
    assert [dataset[i] for i in range(len(dataset))] == [b"\x00", b"\x01\x01", b"\x02\x02\x02"]


def test_the_manifest_command_shows_its_progress_on_a_terminal(s3, capsys, monkeypatch):
    """manifest.main: on a terminal, a progress line counts the listed objects and ends with a newline."""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    for i in range(2):
        s3.put(f"p/{i}", b"x")
    assert manifest_main([s3.uri("p/"), s3.uri("p.jsonl"), "--endpoint", s3.endpoint]) == 0  # default region
    shown = terminal.getvalue()
    assert shown.startswith("\rlisted ") and shown.endswith("listed 2 objects\n"), repr(shown)


def test_the_manifest_commands_help(capsys):
    """manifest.main --help: the command's name, what it does, and what each argument is."""
    with pytest.raises(SystemExit) as exited:
        manifest_main(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: python -m s3torchconnector.manifest ")
    for part in (
        "manifest_uri List an S3 prefix once and write its manifest (JSON Lines; gzip when the name ends in "
        ".gz). positional arguments:",
        "prefix_uri s3://bucket/prefix to list",
        "manifest_uri s3://bucket/path/manifest.jsonl[.gz] to write",
        "--region REGION",
        "--endpoint ENDPOINT",
    ):
        assert part in text, part


@pytest.fixture
def signed_regions(monkeypatch):
    """The region of each request's SigV4 signature (Credential=<key>/<date>/<region>/s3/aws4_request),
    as the in-process moto server receives it."""
    import re

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    regions = []
    serve = DomainDispatcherApplication.__call__

    def recording(app, environ, start_response):
        credential = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request", environ.get("HTTP_AUTHORIZATION", ""))
        regions.append(credential.group(1) if credential else None)
        return serve(app, environ, start_response)

    monkeypatch.setattr(DomainDispatcherApplication, "__call__", recording)
    return regions


@pytest.mark.parametrize("region_arguments, region", [([], "us-east-1"), (["--region", "eu-west-2"], "eu-west-2")])
def test_the_manifest_command_signs_for_its_region(s3, capsys, signed_regions, region_arguments, region):
    """manifest.main: without --region the requests are signed for us-east-1 (S3 refuses a signature
    for another region than the bucket's), and --region names the region they are signed for."""
    s3.put("r/0", b"x")
    del signed_regions[:]  # the boto3 upload above
    assert manifest_main([s3.uri("r/"), s3.uri("r.jsonl"), "--endpoint", s3.endpoint, *region_arguments]) == 0
    assert capsys.readouterr().out == f"wrote {s3.uri('r.jsonl')}: 1 objects\n"
    assert signed_regions and set(signed_regions) == {region}, signed_regions


LARGE = 40_000  # lines of about 80 bytes: the manifest is read in several megabyte blocks


def large_manifest(s3, odd_lines):
    """A header and LARGE entries in write_manifest's shape, except the lines at the numbers in
    ``odd_lines``, which are given as they are. Puts it, gzipped, into the bucket; returns each
    expected entry as (bucket, key, size, etag)."""
    lines = [f'{{"s3torchconnector_manifest":1,"bucket":"{s3.bucket}","prefix":"big/"}}']
    expected = []
    for i in range(LARGE):
        key, size, etag = f"big/{i:06d}.bin", i, f'"{i:032x}"'
        lines.append(json.dumps({"key": key, "size": size, "etag": etag}, separators=(",", ":")))
        expected.append((s3.bucket, key, size, etag))
    for number, line in odd_lines.items():
        lines[number - 1] = line
    s3.put("big.jsonl.gz", gzip.compress("\n".join(lines).encode()))
    return expected


def entries_of(entries):
    return [
        (e.bucket, e.key, e.object_info and e.object_info.size, e.object_info and e.object_info.etag) for e in entries
    ]


def test_a_large_manifest_reads_every_line_in_order(s3):
    """Lines in write_manifest's shape and other accepted forms mix in any block, and every entry
    keeps its place, key, size and ETag: through len, index, slice and pickle of the map dataset's
    objects, and in the fingerprint a saved pass is checked against, the same as a listing's."""
    odd = {
        3: '{"key": "big/000001.bin", "size": 1, "etag": "\\"00000000000000000000000000000001\\""}',
        20_000: '{"uri": "s3://other/far.bin", "size": 7}',
        30_000: '{"key":"big/029998.bin","size":29998,"etag":"\\"0000000000000000000000000000752e\\"","x":1}',
        35_000: '{"key":"big/\\u00e9t\\u00e9.bin","size":5,"etag":"\\"e\\""}',
        LARGE + 1: '{"key":"big/last.bin"}',
    }
    expected = large_manifest(s3, odd)
    expected[20_000 - 2] = ("other", "far.bin", 7, "")
    expected[35_000 - 2] = (s3.bucket, "big/été.bin", 5, '"e"')
    expected[LARGE - 1] = (s3.bucket, "big/last.bin", None, None)

    dataset = S3MapDataset.from_manifest(s3.uri("big.jsonl.gz"), **options(s3))
    objects = dataset._dataset_objects
    assert len(dataset) == LARGE
    assert entries_of(objects) == expected
    assert entries_of(objects[-3:]) == expected[-3:] and entries_of([objects[-1]]) == expected[-1:]
    assert entries_of(pickle.loads(pickle.dumps(dataset))._dataset_objects) == expected

    # The listing a saved pass is checked against (format version 1): the count, and the SHA-256 of
    # the keys, each followed by a NUL, as a listing of the same keys gives it.
    digest = hashlib.sha256("".join(entry[1] + "\0" for entry in expected).encode()).hexdigest()[:16]
    assert LazyListing(objects).fingerprint() == Listing(objects=LARGE, digest=digest)
    assert LazyListing(iter(list(objects))).fingerprint() == Listing(objects=LARGE, digest=digest)


@pytest.mark.parametrize("number", [2, 20_000, LARGE + 1])
def test_a_bad_line_anywhere_in_a_large_manifest_is_named(s3, number):
    large_manifest(s3, {number: '{"key":"big/x.bin","size":-1,"etag":"\\"e\\""}'})
    with pytest.raises(ValueError, match=f"line {number}: size must be a non-negative integer"):
        len(S3MapDataset.from_manifest(s3.uri("big.jsonl.gz"), **options(s3)))
