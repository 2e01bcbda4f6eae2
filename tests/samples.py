"""What many tests share: the transforms and collate function given to datasets and DataLoaders, and
test data (seeded bytes, tar shards built in memory).

The transforms and ``keep_list`` are module-level functions of this module, so that DataLoader
workers started by spawn or forkserver unpickle them by their path (``samples.key_and_bytes``):
such a worker gets its parent's ``sys.path``, which holds tests/ under pytest (tests/conftest.py
is there, and tests/ has no ``__init__.py``); a script the tests run in its own interpreter puts
tests/ on ``sys.path`` itself before importing this module (tests/e2e/resume_run.py). A worker
imports this module whole, so it imports the standard library only.
"""

import hashlib
import io
import random
import tarfile


def key_and_bytes(reader):
    """A dataset's transform: the object's key and all of its bytes."""
    return reader.key, reader.read()


def key_of(reader):
    """A dataset's transform: the object's key only."""
    return reader.key


def key_of_sample(sample):
    """A tar shard dataset's transform: the sample's key only."""
    return sample["__key__"]


def keep_list(batch):
    """A DataLoader's collate_fn: the batch as the list of samples it is."""
    return batch


def batch_and_requests(batch):
    """A DataLoader's collate_fn: (worker id, the batch, the requests its worker's copy of the dataset
    sent so far, by operation), to check what a worker asked S3 for."""
    from torch.utils.data import get_worker_info  # in the worker only: this module imports no torch

    worker = get_worker_info()
    operations = worker.dataset.metrics()["operations"]
    return worker.id, batch, {name: counts["requests"] for name, counts in operations.items()}


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` random bytes, the same for the same seed."""
    return random.Random(seed).randbytes(size)


def sha256(data) -> str:
    return hashlib.sha256(data).hexdigest()


def tar_of(members, format=tarfile.DEFAULT_FORMAT) -> bytes:
    """A tar with the given (name, bytes) members, in ``format``; a name ending in '/' is a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=format) as tar:
        for name, data in members:
            member = tarfile.TarInfo(name.rstrip("/"))
            if name.endswith("/"):
                member.type = tarfile.DIRTYPE
                tar.addfile(member)
            else:
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def tar_member(name: str, data: bytes, **fields) -> bytes:
    """One regular file as it stands in a tar (pax format): its header blocks, its bytes and their
    padding; ``fields``: TarInfo attributes to set (``pax_headers={...}`` for records of its own)."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for field, value in fields.items():
        setattr(info, field, value)
    return info.tobuf(tarfile.PAX_FORMAT) + data + bytes(-len(data) % 512)


def patched_header(header: bytes, at: int, field: bytes, signed_checksum: bool = False) -> bytes:
    """A header block with ``field`` written at ``at`` and its checksum made again (of signed bytes,
    as some old tars summed them, when asked)."""
    block = bytearray(header)
    block[at : at + len(field)] = field
    block[148:156] = b" " * 8
    total = sum(byte - 256 if signed_checksum and byte >= 128 else byte for byte in block)
    block[148:156] = b"%06o\0 " % total
    return bytes(block)


def txt_shard(names, damaged_header=None) -> bytes:
    """A tar shard of one '.txt' member per sample name, its bytes the name (ustar: each member is a
    header block and one data block, for names under 512 bytes); ``damaged_header``: the index of a
    member whose header fails its checksum."""
    data = bytearray(tar_of([(f"{name}.txt", name.encode()) for name in names], format=tarfile.USTAR_FORMAT))
    if damaged_header is not None:
        at = 1024 * damaged_header
        data[at + 148 : at + 156] = b"99999999"
    return bytes(data)
