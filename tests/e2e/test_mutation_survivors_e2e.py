"""Tests written for mutants that survived tests/mutation/run.py and need a real S3 API (moto over
HTTP): each pins a behaviour no other test checked in the test's own process."""

import gzip
import io
import json
import sys

import pytest

from s3torchconnector import S3MapDataset
from s3torchconnector.manifest import main as manifest_main


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
