"""A manifest's objects in one index file per node (_listing/index_files.py), against a real S3 API
(moto over HTTP): the first process builds it, every other process of the node (DataLoader workers
by fork, spawn and forkserver, another interpreter) maps the same file without reading the manifest
again, and another version of the manifest never gets this one's index. A listing's index is the
listing process's, mapped by its workers."""

import gc
import json
import os
from pathlib import Path

import pytest
import torch.utils.data
from python_script import run_python
from samples import key_and_bytes

from s3torchconnector import S3MapDataset
from s3torchconnector._listing.indexed_objects import IndexedObjects

N = 40
ENTRIES = 200_000


def index_files():
    return sorted(Path(os.environ["S3TORCHCONNECTOR_INDEX_DIR"]).glob("*.index"))


def manifest_of(s3, name, entries):
    lines = [json.dumps({"s3torchconnector_manifest": 1, "bucket": s3.bucket, "prefix": ""})]
    lines += [
        json.dumps({"key": key, "size": size, "etag": etag}, separators=(",", ":")) for key, size, etag in entries
    ]
    s3.put(name, ("\n".join(lines) + "\n").encode())
    return s3.uri(name)


@pytest.fixture
def objects(s3):
    uploaded = {f"train/{i:03d}.bin": f"sample {i} ".encode() * (i + 1) for i in range(N)}
    for key, body in uploaded.items():
        s3.put(key, body)
    listed = s3.boto3.list_objects_v2(Bucket=s3.bucket, Prefix="train/")["Contents"]
    return uploaded, manifest_of(s3, "train.jsonl", [(o["Key"], o["Size"], o["ETag"]) for o in listed])


@pytest.mark.parametrize("source", ["manifest", "prefix"])
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_dataloader_workers_map_the_main_process_index(s3, objects, method, source):
    """A manifest's index (shared by the node) or a listing's (this process's): the workers map the
    main process's file, whatever their start method."""
    uploaded, uri = objects
    before = set(index_files())
    make = S3MapDataset.from_manifest if source == "manifest" else S3MapDataset.from_prefix
    uri = uri if source == "manifest" else s3.uri("train/")
    dataset = make(uri, region=s3.region, endpoint=s3.endpoint, transform=key_and_bytes)
    assert len(dataset) == N  # built here
    built = set(index_files()) - before
    assert [str(p) for p in built] == [dataset._dataset_objects.path]
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=2, multiprocessing_context=method, worker_init_fn=_worker_index_path
    )
    assert sorted(map(tuple, loader)) == sorted(uploaded.items())
    assert set(index_files()) - before == built  # no worker built one of its own


def _worker_index_path(worker_id):
    info = torch.utils.data.get_worker_info()
    assert info.dataset._dataset_objects.path in map(str, index_files())


def test_another_process_maps_the_index_without_reading_the_manifest(s3, tmp_path):
    """The second process of a node asks only for the manifest's version (HEAD), then maps the
    first one's index: no GET of the manifest, and its own memory grows far less than the old
    per-process list (~180 B/entry; bound here 40, the bench measures the target of 8)."""
    uri = manifest_of(s3, "big.jsonl", [(f"big/{i:07d}.bin", i, f'"{i:032x}"') for i in range(ENTRIES)])
    first = S3MapDataset.from_manifest(uri, region=s3.region, endpoint=s3.endpoint)
    assert len(first) == ENTRIES
    script = """
        import json, sys
        from s3torchconnector import S3MapDataset

        def private_bytes():
            with open("/proc/self/smaps_rollup") as f:
                return sum(int(line.split()[1]) * 1024 for line in f if line.startswith(("Private_Clean", "Private_Dirty")))

        dataset = S3MapDataset.from_manifest(sys.argv[1], region=sys.argv[2], endpoint=sys.argv[3])
        dataset._get_client().metrics()  # the client's start-up, before the measured part
        before = private_bytes()
        count = len(dataset)
        grown = private_bytes() - before
        entry = dataset._dataset_objects[count - 1]
        requests = {name: op["requests"] for name, op in dataset.metrics()["operations"].items() if op["requests"]}
        print(json.dumps(dict(count=count, grown=grown, path=dataset._dataset_objects.path, requests=requests,
                              last=[entry.key, entry.object_info.size, entry.object_info.etag])))
    """
    done = run_python(script, uri, s3.region, s3.endpoint, timeout=120)
    assert done.returncode == 0, done.stderr
    second = json.loads(done.stdout)
    assert second["path"] == first._dataset_objects.path
    assert second["count"] == ENTRIES
    assert second["last"] == [f"big/{ENTRIES - 1:07d}.bin", ENTRIES - 1, f'"{ENTRIES - 1:032x}"']
    assert second["requests"] == {"HeadObject": 1}
    assert second["grown"] < 40 * ENTRIES


def test_a_rewritten_manifest_gets_an_index_of_its_own(s3):
    uri = manifest_of(s3, "m.jsonl", [("a.bin", 1, '"e1"'), ("b.bin", 2, '"e2"')])
    old = S3MapDataset.from_manifest(uri, region=s3.region, endpoint=s3.endpoint)
    assert [o.key for o in old._dataset_objects] == ["a.bin", "b.bin"]
    manifest_of(s3, "m.jsonl", [("c.bin", 3, '"e3"')])
    new = S3MapDataset.from_manifest(uri, region=s3.region, endpoint=s3.endpoint)
    assert [o.key for o in new._dataset_objects] == ["c.bin"]
    assert new._dataset_objects.path != old._dataset_objects.path
    assert [o.key for o in old._dataset_objects] == ["a.bin", "b.bin"]  # a holder keeps its version


def test_a_listing_index_holds_what_one_pagination_gives_and_goes_with_its_dataset(s3, objects):
    """from_prefix lists in parallel straight into an index: every field a listing gives (ETag, size,
    LastModified, storage class) as one pagination gives it, in its order. The file is the listing
    process's: removed when its dataset goes."""
    dataset = S3MapDataset.from_prefix(s3.uri("train/"), region=s3.region, endpoint=s3.endpoint)
    listed = dataset._dataset_objects
    assert isinstance(listed, IndexedObjects)
    pages = dataset._get_client().list_objects(s3.bucket, "train/", max_keys=7)
    paged = [info for page in pages for info in page.object_info]
    assert len(paged) == N
    assert [
        (
            o.bucket,
            o.key,
            o.object_info.etag,
            o.object_info.size,
            o.object_info.last_modified,
            o.object_info.storage_class,
        )
        for o in listed
    ] == [(s3.bucket, i.key, i.etag, i.size, i.last_modified, i.storage_class) for i in paged]
    path = listed.path
    assert os.path.exists(path)
    del dataset, listed
    gc.collect()
    assert not os.path.exists(path)
