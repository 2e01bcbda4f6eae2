"""Whole-object reads receive their parts straight into the caller's memory (cpp/landing_pool.h), and
stay exact when parts fail and are sent again, or when several reads share one client."""

import threading

import pytest
import torch

from s3torchconnector import S3Checkpoint, S3ClientConfig
from s3torchconnector.s3reader.sequential import TAIL_BYTES

from .proxy import error, synthetic, synthetic_bytes, truncate
from .test_faults import MIB, PART, client_for, payload, ranged_get_of, read_sequential, returns, sha

# More than the read window a download starts with (eight client parts): the parts past it can only be
# asked for once the destination is known, so at least those are received in place.
INITIAL_WINDOW = 8 * PART
SIZE = INITIAL_WINDOW + 8 * MIB + 77_777


def in_place_and_received(client) -> tuple:
    get = client.metrics()["operations"]["GetObject"]
    return get["bytes_in_place"], get["bytes"]


def test_a_whole_read_receives_the_parts_past_the_first_window_in_place(s3, proxy):
    data = payload(SIZE, seed=60)
    s3.put("obj.bin", data)
    client = client_for(proxy, s3.region)

    assert sha(read_sequential(client, s3.bucket, "obj.bin")) == sha(data)

    in_place, received = in_place_and_received(client)
    assert received == SIZE
    assert SIZE - INITIAL_WINDOW <= in_place <= SIZE


def test_parts_spread_over_the_connections_runs_land_in_place(s3, proxy):
    # More parts than the download has connections: the CRT cuts them into one run per connection and takes a part
    # from each run in turn, the order cpp/crt_internals.h mirrors (item 2). A mirror that differs from the CRT
    # hands parts the wrong slices, and they are copied in instead: the in-place count drops.
    whole_part = 4 * MIB
    size = 30 * whole_part + 12_345  # 30 parts after the first, over 10 runs of 3 or 2
    proxy.add(lambda r: r.is_get_of("spread.bin"), synthetic(size))
    client = client_for(proxy, s3.region, throughput_target_gbps=1.0)  # 10 connections a request

    assert sha(read_sequential(client, s3.bucket, "spread.bin")) == sha(synthetic_bytes(0, size))

    in_place, received = in_place_and_received(client)
    assert received == size
    assert in_place >= size - INITIAL_WINDOW


@pytest.mark.parametrize("fault", [error(500, "InternalError"), truncate(1000)], ids=["500", "truncated"])
def test_parts_sent_again_land_in_place_and_exact(s3, proxy, fault):
    data = payload(SIZE, seed=61)
    s3.put("obj.bin", data)
    rule = proxy.add(
        lambda r: ranged_get_of(s3.bucket, "obj.bin")(r) and r.attempt == 0, fault, when=lambda n: n % 3 == 2
    )
    client = client_for(proxy, s3.region)

    got = returns(lambda: read_sequential(client, s3.bucket, "obj.bin"))

    assert rule.fired >= 3, "the fault never fired past the first window: the test proved nothing"
    assert sha(got) == sha(data)
    in_place, _ = in_place_and_received(client)
    assert in_place >= SIZE - INITIAL_WINDOW


def test_reads_sharing_one_client_each_get_their_own_bytes(s3, proxy):
    # Requests of one client share its pool: a slice must go to the download it belongs to, also when a
    # finished download's address is reused by the next one.
    objects = {f"obj-{i}.bin": payload(SIZE // 2 + i * 1_000_003, seed=70 + i) for i in range(3)}
    for key, data in objects.items():
        s3.put(key, data)
    client = client_for(proxy, s3.region)
    failures = []

    def read_each_twice(key):
        try:
            for _ in range(2):
                got = read_sequential(client, s3.bucket, key)
                if sha(got) != sha(objects[key]):
                    failures.append(key)
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(f"{key}: {e!r}")

    threads = [threading.Thread(target=read_each_twice, args=(key,)) for key in objects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a read never finished"
    assert failures == []


@pytest.mark.parametrize("validate_checksums", [False, True])
def test_a_checkpoint_loaded_while_it_lands_is_exact(s3, proxy, validate_checksums):
    # A reader whose whole-object GET was started (prefetch(), as datasets do) lands the object in one
    # buffer while torch.load reads its pieces.
    state = {"w": torch.arange(SIZE // 4, dtype=torch.float32), "b": torch.ones(1000)}
    with S3Checkpoint(region=s3.region, endpoint=proxy.url).writer(s3.uri("ckpt.pt")) as f:
        torch.save(state, f)
    client = client_for(proxy, s3.region, validate_checksums=validate_checksums)

    with client.get_object(s3.bucket, "ckpt.pt") as f:
        f.prefetch()
        loaded = torch.load(f, weights_only=True)

    assert torch.equal(loaded["w"], state["w"]) and torch.equal(loaded["b"], state["b"])
    if not validate_checksums:
        # With a whole-object checksum to check, the CRT may ask for the parts in another order than the
        # pool expects: they are then copied in as before, and only exactness is asserted.
        in_place, _ = in_place_and_received(client)
        assert in_place > 0


@pytest.mark.parametrize("validate_checksums", [False, True])
def test_a_checkpoint_loaded_front_to_back_is_exact_and_fetched_once(s3, proxy, validate_checksums):
    # S3Checkpoint.reader starts no GET before torch.load's first read: the checkpoint is read front to
    # back, its tensors' bytes going straight from the stream into their storages; only the zip's
    # index at the tail comes by a GET of its own.
    state = {"w": torch.arange(SIZE // 4, dtype=torch.float32), "b": torch.ones(1000)}
    with S3Checkpoint(region=s3.region, endpoint=proxy.url).writer(s3.uri("ckpt.pt")) as f:
        torch.save(state, f)
    size = len(s3.get("ckpt.pt"))
    config = S3ClientConfig(part_size=PART, validate_checksums=validate_checksums)
    loader = S3Checkpoint(region=s3.region, endpoint=proxy.url, s3client_config=config)

    with loader.reader(s3.uri("ckpt.pt")) as f:
        loaded = torch.load(f, weights_only=True)

    assert torch.equal(loaded["w"], state["w"]) and torch.equal(loaded["b"], state["b"])
    _, received = in_place_and_received(loader)
    assert size <= received <= size + TAIL_BYTES
