"""S3MapDataset in a seeded, shuffled order per epoch, split across ranks by torch's
DistributedSampler, and resumed mid-epoch in a new process with torchdata's
StatefulDistributedSampler and StatefulDataLoader. Every object is read over HTTP from the local
S3 server, and its bytes are checked.

The order is the sampler's: a map-style dataset reads whatever index it is given, so
``DistributedSampler(dataset, num_replicas, rank, shuffle=True, seed=...)`` with
``sampler.set_epoch(epoch)`` before each epoch gives every rank its share of a permutation drawn
from (seed, epoch). The stateful sampler's state is only how far it got: the epoch is set again
(with ``set_epoch``) before the saved loader state is loaded.
"""

import json
import uuid

import pytest
import torch
from python_script import run_python
from torch.utils.data import DataLoader, DistributedSampler
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import StatefulDistributedSampler

from s3torchconnector import S3MapDataset

REGION = "us-east-1"
N_OBJECTS = 30
RANKS = 2
BATCH = 4  # 15 objects per rank: batches of 4, 4, 4 and 3
SEED = 2024
EPOCHS = 3
TIMEOUT = 120

pytestmark = pytest.mark.filterwarnings("ignore:'set_vital' is deprecated")  # torchdata 0.11 vs this torch


def body(key: str) -> bytes:
    return (key * 40).encode()


def checked_key(reader) -> str:
    """The transform: reads the whole object, checks its bytes and gives its key."""
    data = reader.read()
    assert data == body(reader.key), reader.key
    return reader.key


@pytest.fixture(scope="module")
def bucket(s3_endpoint):
    import boto3

    name = f"map-order-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    client.create_bucket(Bucket=name)
    keys = [f"train/{i:03d}.bin" for i in range(N_OBJECTS)]
    for key in keys:
        client.put_object(Bucket=name, Key=key, Body=body(key))
    client.put_object(Bucket=name, Key="other/not-in-dataset.bin", Body=b"x")
    return s3_endpoint, name, keys


def _dataset(bucket) -> S3MapDataset:
    endpoint, name, _ = bucket
    return S3MapDataset.from_prefix(f"s3://{name}/train/", region=REGION, endpoint=endpoint, transform=checked_key)


def _epoch_batches(dataset, rank: int, epoch: int, seed: int = SEED) -> list:
    """One rank's batches of keys for one epoch, read as a training loop does."""
    sampler = DistributedSampler(dataset, num_replicas=RANKS, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(DataLoader(dataset, batch_size=BATCH, sampler=sampler))


def _flat(batches) -> list:
    return [key for batch in batches for key in batch]


def test_every_object_once_per_epoch_across_ranks_in_a_new_order_each_epoch(bucket):
    _, _, keys = bucket
    dataset = _dataset(bucket)
    orders = []
    for epoch in range(EPOCHS):
        by_rank = [_flat(_epoch_batches(dataset, rank, epoch)) for rank in range(RANKS)]
        assert [len(order) for order in by_rank] == [N_OBJECTS // RANKS] * RANKS
        assert sorted(key for order in by_rank for key in order) == keys  # each object exactly once
        # What each rank reads is what its sampler gives: dataset[i] is the i-th listed object.
        sampler = DistributedSampler(dataset, num_replicas=RANKS, rank=1, shuffle=True, seed=SEED)
        sampler.set_epoch(epoch)
        assert by_rank[1] == [keys[i] for i in sampler]
        orders.append(by_rank)
    for earlier in range(EPOCHS):
        for later in range(earlier + 1, EPOCHS):
            for rank in range(RANKS):
                assert orders[earlier][rank] != orders[later][rank]
    # Another seed, another order.
    assert _flat(_epoch_batches(dataset, 0, 0, seed=SEED + 1)) != orders[0][0]


FRESH_ORDER = """
    import json, sys
    from torch.utils.data import DataLoader, DistributedSampler
    from s3torchconnector import S3MapDataset
    endpoint, bucket, seed, ranks, epochs = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])

    def key(reader):
        return reader.key

    dataset = S3MapDataset.from_prefix(f"s3://{bucket}/train/", region="us-east-1", endpoint=endpoint, transform=key)
    orders = {}
    for epoch in range(epochs):
        for rank in range(ranks):
            sampler = DistributedSampler(dataset, num_replicas=ranks, rank=rank, shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
            orders[f"{epoch}/{rank}"] = [k for batch in DataLoader(dataset, batch_size=4, sampler=sampler) for k in batch]
    print(json.dumps(orders))
"""


def test_same_seed_and_epoch_give_the_same_order_in_a_new_process(bucket):
    endpoint, name, _ = bucket
    result = run_python(FRESH_ORDER, endpoint, name, SEED, RANKS, EPOCHS, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = json.loads(result.stdout)
    dataset = _dataset(bucket)
    for epoch in range(EPOCHS):
        for rank in range(RANKS):
            assert fresh[f"{epoch}/{rank}"] == _flat(_epoch_batches(dataset, rank, epoch))


RESUME = """
    import json, sys
    import torch
    from torchdata.stateful_dataloader import StatefulDataLoader
    from torchdata.stateful_dataloader.sampler import StatefulDistributedSampler
    from s3torchconnector import S3MapDataset


    def checked_key(reader):
        data = reader.read()
        assert data == (reader.key * 40).encode(), reader.key
        return reader.key


    def main():
        endpoint, bucket, state_path = sys.argv[1:4]
        seed, ranks, epoch, batch_size, num_workers = map(int, sys.argv[4:9])
        saved = torch.load(state_path, weights_only=False)
        dataset = S3MapDataset.from_prefix(
            f"s3://{bucket}/train/", region="us-east-1", endpoint=endpoint, transform=checked_key
        )
        out = {}
        for rank in range(ranks):
            sampler = StatefulDistributedSampler(dataset, num_replicas=ranks, rank=rank, shuffle=True, seed=seed)
            loader = StatefulDataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)
            sampler.set_epoch(epoch)  # the sampler's state holds no epoch: set it before loading
            loader.load_state_dict(saved[rank])
            rest = list(loader)
            sampler.set_epoch(epoch + 1)
            out[rank] = {"rest": rest, "next": list(loader)}
        print(json.dumps(out))


    if __name__ == "__main__":
        main()
"""


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stateful_sampler_resumes_mid_epoch_in_a_new_process(bucket, tmp_path, num_workers):
    """Each rank stops after 2 batches of epoch 1 and saves loader.state_dict(); a new process
    loads it into a new loader and reads exactly the batches an uninterrupted run reads after
    those, then epoch 2 as an uninterrupted run reads it."""
    endpoint, name, keys = bucket
    dataset = _dataset(bucket)
    epoch, taken = 1, 2
    saved, first = {}, {}
    for rank in range(RANKS):
        sampler = StatefulDistributedSampler(dataset, num_replicas=RANKS, rank=rank, shuffle=True, seed=SEED)
        sampler.set_epoch(epoch)
        loader = StatefulDataLoader(dataset, batch_size=BATCH, sampler=sampler, num_workers=num_workers)
        batches = iter(loader)
        first[rank] = [next(batches) for _ in range(taken)]
        saved[rank] = loader.state_dict()
        del batches, loader  # the interrupted run ends here (its workers with it)
    torch.save(saved, tmp_path / "loader_states.pt")

    result = run_python(
        RESUME,
        endpoint,
        name,
        tmp_path / "loader_states.pt",
        SEED,
        RANKS,
        epoch,
        BATCH,
        num_workers,
        timeout=TIMEOUT,
        path=tmp_path / "resume.py",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = {int(rank): runs for rank, runs in json.loads(result.stdout).items()}

    read_in_epoch = []
    for rank in range(RANKS):
        uninterrupted = _epoch_batches(dataset, rank, epoch)
        assert first[rank] == uninterrupted[:taken]
        assert resumed[rank]["rest"] == uninterrupted[taken:]
        assert resumed[rank]["next"] == _epoch_batches(dataset, rank, epoch + 1)
        read_in_epoch += _flat(first[rank] + resumed[rank]["rest"])
    assert sorted(read_in_epoch) == keys
