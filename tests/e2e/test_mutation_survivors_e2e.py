"""Tests written for mutants that survived tests/mutation/run.py and need a real S3 API (moto over
HTTP): each pins a behaviour no other test checked in the test's own process."""

import gzip
import json

from s3torchconnector import S3MapDataset
from s3torchconnector.manifest import main as manifest_main


def test_the_manifest_command_in_process(s3, capsys):
    """manifest.main: test_manifest.py runs it as ``python -m``, where the module is __main__ (and a
    mutant of s3torchconnector.manifest never active). Called here: its arguments reach
    write_manifest, it prints what it wrote, returns 0, and the manifest reads back."""
    for i in range(3):
        s3.put(f"train/{i}.bin", bytes([i]) * (i + 1))
    s3.put("other/x.bin", b"not listed")

    assert manifest_main([s3.uri("train/"), s3.uri("m/train.jsonl.gz"), "--region", s3.region,
                          "--endpoint", s3.endpoint]) == 0
    assert capsys.readouterr().out == f"wrote {s3.uri('m/train.jsonl.gz')}: 3 objects\n"

    lines = gzip.decompress(s3.get("m/train.jsonl.gz")).decode().splitlines()
    entries = [json.loads(line) for line in lines[1:]]  # after the header line
    assert [entry["key"] for entry in entries] == ["train/0.bin", "train/1.bin", "train/2.bin"]
    dataset = S3MapDataset.from_manifest(
        s3.uri("m/train.jsonl.gz"), region=s3.region, endpoint=s3.endpoint, transform=lambda r: r.read()
    )
    assert [dataset[i] for i in range(len(dataset))] == [b"\x00", b"\x01\x01", b"\x02\x02\x02"]
