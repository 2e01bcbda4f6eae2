"""S3Client.metrics() and the torch.profiler spans, against what the fault proxy saw on the wire."""

import json
import os

import torch

from s3torchconnector import S3Checkpoint, S3MapDataset, merge_metrics

from .proxy import error, stall
from .test_faults import (
    DEADLINE,
    PART,
    SIZE,
    STALL_SETTINGS,
    PartsOfGet,
    client_for,
    payload,
    read_sequential,
    returns,
    upload_part_of,
    write,
)


def test_counts_match_the_requests_on_the_wire(s3, proxy):
    data = payload(SIZE, seed=40)
    client = client_for(proxy, s3.region)
    assert client.metrics() == {"operations": {}, "peak_connections": 0}

    write(client, s3.bucket, "obj.bin", data)
    assert read_sequential(client, s3.bucket, "obj.bin") == data
    client.head_object(s3.bucket, "obj.bin")
    list(client.list_objects(s3.bucket))

    metrics = client.metrics()
    operations = metrics["operations"]
    assert set(operations) == {"PutObject", "GetObject", "HeadObject", "ListObjectsV2"}
    on_wire_gets = len(proxy.requests(lambda r: r.method == "GET" and r.path == f"/{s3.bucket}/obj.bin"))
    assert operations["GetObject"]["requests"] == on_wire_gets >= SIZE // PART
    # Create, four parts, complete: every request of the upload counts under PutObject.
    assert operations["PutObject"]["requests"] == len(
        proxy.requests(lambda r: r.path == f"/{s3.bucket}/obj.bin" and r.method in ("PUT", "POST"))
    )
    assert operations["GetObject"]["bytes"] == SIZE
    assert operations["PutObject"]["bytes"] == SIZE
    assert operations["HeadObject"] == {**operations["HeadObject"], "requests": 1, "bytes": 0}
    for name, counts in operations.items():
        assert all(counts[c] == 0 for c in ("retries", "throttles", "server_errors", "stalls_dropped", "failed")), name
        for latency in ("first_byte_ms", "duration_ms"):
            p = counts[latency]
            assert 0 < p["p50"] <= p["p90"] <= p["p99"] < DEADLINE * 1000, (name, latency, p)
    assert metrics["peak_connections"] >= 1
    json.dumps(metrics)  # plain values: a worker or rank can send it anywhere


def test_throttles_and_retries_are_counted(s3, proxy):
    data = payload(SIZE, seed=41)
    s3.put("obj.bin", data)
    parts = PartsOfGet(s3.bucket, "obj.bin")
    slow_down = proxy.add(lambda r: parts.number(r) in (1, 2) and r.attempt == 0, error(503, "SlowDown"))
    failing = proxy.add(upload_part_of(s3.bucket, "up.bin", {2}), error(500, "InternalError"), limit=1)
    client = client_for(proxy, s3.region)

    assert read_sequential(client, s3.bucket, "obj.bin") == data
    write(client, s3.bucket, "up.bin", data)

    get, put = client.metrics()["operations"]["GetObject"], client.metrics()["operations"]["PutObject"]
    assert slow_down.fired == 2 and failing.fired == 1
    assert (get["throttles"], get["server_errors"], get["retries"], get["failed"]) == (2, 2, 2, 2)
    assert (put["throttles"], put["server_errors"], put["retries"], put["failed"]) == (0, 1, 1, 1)
    assert get["bytes"] == put["bytes"] == SIZE  # failed attempts deliver nothing


def test_a_dropped_stall_is_counted(s3, proxy):
    data = payload(SIZE, seed=42)
    s3.put("obj.bin", data)
    parts = PartsOfGet(s3.bucket, "obj.bin")
    proxy.add(lambda r: parts.number(r) == 1 and r.attempt == 0, stall(DEADLINE))
    client = client_for(proxy, s3.region, **STALL_SETTINGS)

    assert returns(lambda: read_sequential(client, s3.bucket, "obj.bin")) == data

    get = client.metrics()["operations"]["GetObject"]
    assert (get["stalls_dropped"], get["retries"], get["failed"]) == (1, 1, 1)


def test_datasets_and_checkpoints_report_their_clients_metrics(s3):
    for i in range(3):
        s3.put(f"data/{i}", bytes([i]) * 1000)
    dataset = S3MapDataset.from_prefix(s3.uri("data/"), region=s3.region, endpoint=s3.endpoint)
    assert [bytes(item.read()) for item in dataset] == [bytes([i]) * 1000 for i in range(3)]
    got = dataset.metrics()["operations"]
    assert (got["GetObject"]["requests"], got["GetObject"]["bytes"]) == (3, 3000)
    assert got["ListObjectsV2"]["requests"] == 1

    checkpoint = S3Checkpoint(region=s3.region, endpoint=s3.endpoint)
    with checkpoint.writer(s3.uri("ckpt.pt")) as writer:
        torch.save({"w": torch.arange(10)}, writer)
    assert checkpoint.metrics()["operations"]["PutObject"]["requests"] >= 1


def test_each_process_counts_its_own_requests(s3):
    s3.put("obj", b"x" * 100)
    dataset = S3MapDataset.from_objects([s3.uri("obj")], region=s3.region, endpoint=s3.endpoint)
    dataset[0].read()
    read, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a fresh native client, nothing counted yet; then one GET of its own
        try:
            before = dataset.metrics()["operations"]
            dataset[0].read()
            after = dataset.metrics()["operations"]["GetObject"]["requests"]
            os.write(write_end, json.dumps([before, after]).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    before, after = json.loads(os.read(read, 100_000))
    assert (before, after) == ({}, 1)
    assert dataset.metrics()["operations"]["GetObject"]["requests"] == 1  # the parent's, unchanged


def test_waits_on_s3_show_in_a_torch_profile(s3):
    s3.put("obj", os.urandom(3 * PART))
    client = client_for_endpoint(s3)
    with torch.profiler.profile() as profile:
        read_sequential(client, s3.bucket, "obj")
        client.head_object(s3.bucket, "obj")
    names = {event.name for event in profile.events()}
    assert {"s3torchconnector.GetObject", "s3torchconnector.HeadObject"} <= names
    read_sequential(client, s3.bucket, "obj")  # no profiler: nothing recorded, nothing fails


def client_for_endpoint(s3):
    from s3torchconnector._s3client import S3Client

    return S3Client(s3.region, endpoint=s3.endpoint)


def test_merge_adds_processes_and_recomputes_percentiles(s3):
    one, two = client_for_endpoint(s3), client_for_endpoint(s3)
    s3.put("obj", b"y" * 10)
    for _ in range(3):
        read_sequential(one, s3.bucket, "obj")
    read_sequential(two, s3.bucket, "obj")
    through_json = json.loads(json.dumps(two.metrics()))

    merged = merge_metrics([one.metrics(), through_json])["operations"]["GetObject"]
    assert (merged["requests"], merged["bytes"]) == (4, 40)
    assert sum(merged["histograms"]["duration_us"].values()) == 4
    assert merged["duration_ms"]["p50"] <= merged["duration_ms"]["p99"]
    assert merge_metrics([]) == {"operations": {}, "peak_connections": 0}
