"""One workload, run by one client, in a fresh process: ``python workloads.py '<json spec>'``.

Runs under both our interpreter and the original 1.5.0's venv (the import name is the same), so
it imports nothing from the bench package. Prints one line ``RESULT {json}``.

Spec keys: impl (ours | original | boto3 | s3fs | ours_prefix | webdataset | ours_nocache | local_files |
webdataset_local | ours_paged), workload, endpoint, bucket, key, size, path (the file nginx serves, to check bytes),
and the workload's own parameters. ``ours_prefix`` is our package too (W4m: from_prefix beside ours'
from_manifest), and so are ``ours_nocache`` (W9c: ours with the node cache off) and ``ours_paged``
(W11: ours' one pagination beside its parallel listing).
"""

import io
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

MIB = 1024 * 1024
REGION = "us-east-1"


# ---------------------------------------------------------------- isolation of the two packages


def _isolate_original() -> None:
    """In the original's venv, forget our editable install before anything imports it.

    The venv sees the main site-packages (for torch), whose .pth files install our editable
    package's import hook (a meta path finder) and put our python/ dir on sys.path.
    """
    sys.meta_path[:] = [
        f
        for f in sys.meta_path
        if not (type(f).__module__.startswith("_editable") and "s3torchconnector" in type(f).__module__)
    ]
    venv = os.path.realpath(sys.prefix)
    keep = []
    for entry in sys.path:
        real = os.path.realpath(entry) if entry else entry
        has_ours = entry and os.path.exists(os.path.join(entry, "s3torchconnector", "__init__.py"))
        if has_ours and not real.startswith(venv):
            continue
        keep.append(entry)
    sys.path[:] = keep
    for name in list(sys.modules):
        if name == "s3torchconnector" or name.startswith("s3torchconnector."):
            del sys.modules[name]


def _package_info(impl: str) -> dict:
    import s3torchconnector

    file = os.path.realpath(s3torchconnector.__file__)
    return {
        "version": getattr(s3torchconnector, "__version__", "?"),
        "module_file": file,
        "inside_venv": file.startswith(os.path.realpath(sys.prefix)) and sys.prefix != sys.base_prefix,
        "python": sys.executable,
    }


# ---------------------------------------------------------------- memory and time


def _status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) * 1024
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


class Meter:
    """Wall time, CPU time and peak RSS growth of the code between start() and stop()."""

    def start(self):
        self.reset = _reset_peak()
        self.rss0 = _status()["VmRSS"]
        self.ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self.ruc0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.t0 = time.perf_counter()

    def stop(self) -> dict:
        seconds = time.perf_counter() - self.t0
        ru = resource.getrusage(resource.RUSAGE_SELF)
        ruc = resource.getrusage(resource.RUSAGE_CHILDREN)
        st = _status()
        cpu = (ru.ru_utime - self.ru0.ru_utime) + (ru.ru_stime - self.ru0.ru_stime)
        cpu_children = (ruc.ru_utime - self.ruc0.ru_utime) + (ruc.ru_stime - self.ruc0.ru_stime)
        # Without the reset VmHWM may hold an earlier peak (imports): it then overstates growth.
        return {
            "seconds": seconds,
            "cpu_s": cpu,
            "cpu_children_s": cpu_children,
            "rss_baseline": self.rss0,
            "rss_peak": st["VmHWM"],
            "rss_growth": st["VmHWM"] - self.rss0,
            "peak_reset": self.reset,
        }


# ---------------------------------------------------------------- clients


SPEC = {}


def _config(**options):
    """Unsigned, path-style requests; signed with dummy keys only when the spec says so (the
    harness falls back to it when an unsigned client cannot be made, and reports that)."""
    from s3torchconnector import S3ClientConfig

    if SPEC.get("signed"):
        return S3ClientConfig(force_path_style=True, **options)
    return S3ClientConfig(unsigned=True, force_path_style=True, **options)


def w_client_check(spec, impl):
    """Can an unsigned client be made and used (one HEAD)?"""
    client = _s3client(spec["endpoint"])
    info = client.head_object(spec["bucket"], spec["key"])
    return {"size": info.size}


def _s3client(endpoint):
    from s3torchconnector._s3client import S3Client

    return S3Client(REGION, endpoint=endpoint, s3client_config=_config())


def _boto3(endpoint, signed=False):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    signature = {} if signed else dict(signature_version=UNSIGNED)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(**signature, s3={"addressing_style": "path"}, max_pool_connections=16),
    )


def _s3fs(endpoint):
    import s3fs

    return s3fs.S3FileSystem(
        anon=True, client_kwargs={"endpoint_url": endpoint, "region_name": REGION}, skip_instance_cache=True
    )


def read_all(reader) -> bytes:
    """The transform of the dataset workloads: the sample's bytes, as a user reads them."""
    return reader.read()


def _check_bytes(path, data, offsets=None):
    """Spot-check ``data`` against the file nginx serves (start, middle, end, 64 KiB each)."""
    if not path:
        return
    size = len(data)
    offsets = offsets if offsets is not None else [0, size // 2, max(0, size - 65536)]
    with open(path, "rb") as f:
        for off in offsets:
            f.seek(off)
            want = f.read(min(65536, size - off))
            got = bytes(data[off : off + len(want)])
            if got != want:
                raise AssertionError(f"bytes at offset {off} differ from the served file")


# ---------------------------------------------------------------- workloads


def w_probe(spec, impl):
    return _package_info(impl)


def w_seq_read(spec, impl):
    """One object into memory with a sequential read (what a user does: ``item.read()``)."""
    uri = f"s3://{spec['bucket']}/{spec['key']}"
    m = Meter()
    if impl in ("ours", "original"):
        from s3torchconnector import S3MapDataset

        ds = S3MapDataset.from_objects([uri], region=REGION, endpoint=spec["endpoint"], s3client_config=_config())
        m.start()
        data = ds[0].read()
    elif impl == "boto3":
        s3 = _boto3(spec["endpoint"])
        m.start()
        data = s3.get_object(Bucket=spec["bucket"], Key=spec["key"])["Body"].read()
    elif impl == "s3fs":
        fs = _s3fs(spec["endpoint"])
        m.start()
        data = fs.cat_file(f"{spec['bucket']}/{spec['key']}")
    else:
        raise ValueError(impl)
    r = m.stop()
    if len(data) != spec["size"]:
        raise AssertionError(f"read {len(data)} bytes, expected {spec['size']}")
    _check_bytes(spec.get("path"), data)
    r.update(
        bytes=len(data), api="S3MapDataset.from_objects([uri])[0].read()" if impl in ("ours", "original") else None
    )
    return r


def w_startup(spec, impl):
    """Client start-up in a fresh process: from making the client to the bytes of a GET of a tiny object,
    read whole. The imports (torch, boto3) happen before the clock starts; ours builds its native client
    (CRT runtime, connection) at the first request, so that is inside the time too."""
    if impl in ("ours", "original"):
        from s3torchconnector import S3ClientConfig
        from s3torchconnector._s3client import S3Client

        config = S3ClientConfig(force_path_style=True) if spec.get("sign") else _config()
        t0 = time.perf_counter()
        client = S3Client(REGION, endpoint=spec["endpoint"], s3client_config=config)
        t1 = time.perf_counter()
        data = client.get_object(spec["bucket"], spec["key"]).read()
    elif impl == "boto3":
        import boto3  # noqa: F401 - imported before the clock, as ours is
        from botocore.config import Config  # noqa: F401

        t0 = time.perf_counter()
        s3 = _boto3(spec["endpoint"], signed=spec.get("sign", False))
        t1 = time.perf_counter()
        data = s3.get_object(Bucket=spec["bucket"], Key=spec["key"])["Body"].read()
    else:
        raise ValueError(impl)
    t2 = time.perf_counter()
    if len(data) != spec["size"]:
        raise AssertionError(f"read {len(data)} bytes, expected {spec['size']}")
    return {"seconds": t2 - t0, "client_s": t1 - t0, "first_get_s": t2 - t1, "bytes": len(data)}


def _iterable_dataset(spec, sharding):
    from s3torchconnector import S3IterableDataset

    # Only ours shuffles; the original is never given the argument.
    shuffle = dict(shuffle=True, seed=0) if spec.get("shuffle") else {}
    return S3IterableDataset.from_prefix(
        f"s3://{spec['bucket']}/{spec['prefix']}",
        region=REGION,
        endpoint=spec["endpoint"],
        transform=read_all,
        s3client_config=_config(),
        enable_sharding=sharding,
        **shuffle,
    )


def w_iterable(spec, impl):
    """Many small objects through S3IterableDataset (listing included), one process or a DataLoader."""
    workers = spec.get("workers", 0)
    limit = spec.get("limit")  # the peers read the first `limit` objects only
    m = Meter()
    count = nbytes = 0
    if impl in ("ours", "original"):
        import torch.utils.data

        ds = _iterable_dataset(spec, sharding=workers > 0)
        m.start()
        if workers:
            it = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers)
        else:
            it = ds
        for sample in it:
            count += 1
            nbytes += len(sample)
    elif impl == "boto3":
        s3 = _boto3(spec["endpoint"])
        m.start()
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=spec["bucket"], Prefix=spec["prefix"]):
            keys += [o["Key"] for o in page.get("Contents", [])]
        for key in keys[:limit]:
            nbytes += len(s3.get_object(Bucket=spec["bucket"], Key=key)["Body"].read())
            count += 1
    elif impl == "s3fs":
        fs = _s3fs(spec["endpoint"])
        m.start()
        keys = sorted(fs.find(f"{spec['bucket']}/{spec['prefix']}"))
        for key in keys[:limit]:
            nbytes += len(fs.cat_file(key))
            count += 1
    else:
        raise ValueError(impl)
    r = m.stop()
    expected = spec["count"] if not limit else min(limit, spec["count"])
    if count != expected:
        raise AssertionError(f"got {count} objects, expected {expected}")
    if nbytes != count * spec["object_size"]:
        raise AssertionError(f"got {nbytes} bytes for {count} objects of {spec['object_size']}")
    r.update(count=count, bytes=nbytes)
    return r


def w_mixture(spec, impl):
    """W2's prefix as each of several sources of a MixedDataset, read to the end in one process."""
    from s3torchconnector import MixedDataset

    if impl != "ours":
        raise ValueError(impl)
    weights = spec["weights"]
    ds = MixedDataset([_iterable_dataset(spec, sharding=False) for _ in weights], weights, seed=0)
    m = Meter()
    count = nbytes = 0
    m.start()
    for sample in ds:
        count += 1
        nbytes += len(sample)
    r = m.stop()
    expected = len(weights) * spec["count"]
    if count != expected or nbytes != count * spec["object_size"]:
        raise AssertionError(f"got {count} objects ({nbytes} bytes), expected {expected} of {spec['object_size']}")
    r.update(count=count, bytes=nbytes)
    return r


class _Boto3MapDataset:
    """The peer of S3MapDataset that users write by hand: one GetObject per item."""

    def __init__(self, endpoint, bucket, keys):
        self.endpoint, self.bucket, self.keys = endpoint, bucket, keys
        self._s3 = None

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, i):
        if self._s3 is None:
            self._s3 = _boto3(self.endpoint)
        return self._s3.get_object(Bucket=self.bucket, Key=self.keys[i])["Body"].read()


def w_map(spec, impl):
    """S3MapDataset through a DataLoader (shuffled, batch 64, 4 workers), listing included."""
    import torch
    import torch.utils.data

    workers, batch = spec.get("workers", 4), spec.get("batch_size", 64)
    m = Meter()
    if impl in ("ours", "original"):
        from s3torchconnector import S3MapDataset

        ds = S3MapDataset.from_prefix(
            f"s3://{spec['bucket']}/{spec['prefix']}",
            region=REGION,
            endpoint=spec["endpoint"],
            transform=read_all,
            s3client_config=_config(),
        )
        m.start()
    elif impl == "boto3":
        m.start()
        s3 = _boto3(spec["endpoint"])
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=spec["bucket"], Prefix=spec["prefix"]):
            keys += [o["Key"] for o in page.get("Contents", [])]
        ds = _Boto3MapDataset(spec["endpoint"], spec["bucket"], keys[: spec.get("limit")])
    else:
        raise ValueError(impl)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch, shuffle=True, num_workers=workers, generator=torch.Generator().manual_seed(0)
    )
    count = nbytes = 0
    for samples in loader:
        count += len(samples)
        nbytes += sum(len(s) for s in samples)
    r = m.stop()
    expected = min(spec.get("limit") or spec["count"], spec["count"]) if impl == "boto3" else spec["count"]
    if count != expected or nbytes != count * spec["object_size"]:
        raise AssertionError(f"got {count} objects ({nbytes} bytes), expected {expected}")
    r.update(count=count, bytes=nbytes)
    return r


def _make_state_dict(size):
    import torch

    g = torch.Generator().manual_seed(0)
    state, left, i = {}, size, 0
    while left > 0:
        n = min(left, 64 * MIB) // 4
        state[f"layer{i}.weight"] = torch.rand(n, generator=g)
        left -= n * 4
        i += 1
    return state


def w_save(spec, impl):
    """torch.save of a state dict of ``size`` bytes straight to the endpoint."""
    import torch

    state = _make_state_dict(spec["size"])
    uri = f"s3://{spec['bucket']}/{spec['key']}"
    m = Meter()
    if impl in ("ours", "original"):
        from s3torchconnector import S3Checkpoint

        ckpt = S3Checkpoint(region=REGION, endpoint=spec["endpoint"], s3client_config=_config())
        m.start()
        with ckpt.writer(uri) as writer:
            torch.save(state, writer)
            written = writer.tell()
    elif impl == "boto3":
        s3 = _boto3(spec["endpoint"])
        m.start()
        buf = io.BytesIO()
        torch.save(state, buf)
        written = buf.tell()
        buf.seek(0)
        s3.upload_fileobj(buf, spec["bucket"], spec["key"])
    elif impl == "s3fs":
        fs = _s3fs(spec["endpoint"])
        m.start()
        with fs.open(f"{spec['bucket']}/{spec['key']}", "wb") as f:
            torch.save(state, f)
            written = f.tell()
    else:
        raise ValueError(impl)
    r = m.stop()
    r.update(bytes=written)
    if spec.get("verify"):  # the correctness run against moto: read it back with boto3
        import boto3

        s3 = boto3.client("s3", endpoint_url=spec["endpoint"], region_name=REGION)
        body = s3.get_object(Bucket=spec["bucket"], Key=spec["key"])["Body"].read()
        if len(body) != written:
            raise AssertionError(f"moto holds {len(body)} bytes, {written} were written")
        loaded = torch.load(io.BytesIO(body), weights_only=True)
        if loaded.keys() != state.keys() or not all(torch.equal(loaded[k], state[k]) for k in state):
            raise AssertionError("the checkpoint read back differs from the one saved")
        if impl in ("ours", "original"):  # and back through the client's own reader
            with ckpt.reader(uri) as reader:
                again = torch.load(reader, weights_only=True)
            if not all(torch.equal(again[k], state[k]) for k in state):
                raise AssertionError("the checkpoint read back through S3Checkpoint.reader differs")
        r["verified"] = True
    return r


def w_load(spec, impl):
    """torch.load of a checkpoint straight from the endpoint."""
    import torch

    uri = f"s3://{spec['bucket']}/{spec['key']}"
    m = Meter()
    if impl in ("ours", "original"):
        from s3torchconnector import S3Checkpoint

        ckpt = S3Checkpoint(region=REGION, endpoint=spec["endpoint"], s3client_config=_config())
        m.start()
        with ckpt.reader(uri) as reader:
            state = torch.load(reader, weights_only=True)
    elif impl == "boto3":
        s3 = _boto3(spec["endpoint"])
        m.start()
        body = s3.get_object(Bucket=spec["bucket"], Key=spec["key"])["Body"].read()
        state = torch.load(io.BytesIO(body), weights_only=True)
    elif impl == "s3fs":
        fs = _s3fs(spec["endpoint"])
        m.start()
        with fs.open(f"{spec['bucket']}/{spec['key']}", "rb") as f:
            state = torch.load(f, weights_only=True)
    else:
        raise ValueError(impl)
    r = m.stop()
    nbytes = sum(t.numel() * t.element_size() for t in state.values())
    r.update(bytes=spec["size"], tensor_bytes=nbytes)
    return r


def w_random_ranges(spec, impl):
    """``count`` reads of ``read_size`` bytes at random offsets (range-based reader)."""
    rng = random.Random(0)
    size, n, count = spec["size"], spec["read_size"], spec["count"]
    offsets = [rng.randrange(0, size - n) for _ in range(count)]
    m = Meter()
    if impl in ("ours", "original"):
        from s3torchconnector import S3ReaderConstructor

        client = _s3client(spec["endpoint"])
        constructor = S3ReaderConstructor.range_based(**spec.get("reader_args", {}))
        m.start()
        reader = client.get_object(spec["bucket"], spec["key"], reader_constructor=constructor)

        def read(off):
            reader.seek(off)
            return reader.read(n)

    elif impl == "boto3":
        s3 = _boto3(spec["endpoint"])
        m.start()

        def read(off):
            return s3.get_object(Bucket=spec["bucket"], Key=spec["key"], Range=f"bytes={off}-{off + n - 1}")[
                "Body"
            ].read()

    elif impl == "s3fs":
        fs = _s3fs(spec["endpoint"])
        m.start()

        def read(off):
            return fs.cat_file(f"{spec['bucket']}/{spec['key']}", start=off, end=off + n)

    else:
        raise ValueError(impl)
    checked = []
    for i, off in enumerate(offsets):
        data = read(off)
        if len(data) != n:
            raise AssertionError(f"read {len(data)} bytes at {off}, expected {n}")
        if i % 50 == 0:
            checked.append((off, data))
    r = m.stop()
    for off, data in checked:
        with open(spec["path"], "rb") as f:
            f.seek(off)
            if f.read(n) != data:
                raise AssertionError(f"bytes at offset {off} differ from the served file")
    r.update(count=count, bytes=count * n)
    return r


def w_stream(spec, impl):
    """A whole object read in ``chunk``-byte reads (range-based reader): throughput and peak memory.
    The first 16 bytes of every 64 MiB are kept and checked against the served file."""
    chunk = spec["chunk"]
    m = Meter()
    total = 0
    pieces = []
    if impl in ("ours", "original"):
        from s3torchconnector import S3ReaderConstructor

        client = _s3client(spec["endpoint"])
        constructor = S3ReaderConstructor.range_based(**spec.get("reader_args", {}))
        m.start()
        reader = client.get_object(spec["bucket"], spec["key"], reader_constructor=constructor)
        read = reader.read
    elif impl == "boto3":
        s3 = _boto3(spec["endpoint"])
        m.start()
        read = s3.get_object(Bucket=spec["bucket"], Key=spec["key"])["Body"].read
    elif impl == "s3fs":
        fs = _s3fs(spec["endpoint"])
        m.start()
        read = fs.open(f"{spec['bucket']}/{spec['key']}", "rb").read
    else:
        raise ValueError(impl)
    every = 64 * 1024 * 1024
    while True:
        data = read(chunk)
        if not data:
            break
        at = -(-total // every) * every  # the first multiple of 64 MiB from here
        if at < total + len(data):
            pieces.append((at, bytes(data[at - total : at - total + 16])))
        total += len(data)
    r = m.stop()
    if total != spec["size"]:
        raise AssertionError(f"streamed {total} bytes, expected {spec['size']}")
    if spec.get("path"):
        with open(spec["path"], "rb") as f:
            for at, got in pieces:
                f.seek(at)
                if f.read(len(got)) != got:
                    raise AssertionError(f"bytes at offset {at} differ from the served file")
    r.update(bytes=total, checked=len(pieces))
    return r


def w_first_sample(spec, impl):
    """Seconds from building a dataset to its first sample, where the first sample needs every
    object known first: S3MapDataset (len, then [0]) or S3IterableDataset(shuffle=True).
    ours reads a manifest (from_manifest); ours_prefix and the original list the prefix."""
    from s3torchconnector import S3IterableDataset, S3MapDataset

    cls = S3MapDataset if spec["dataset"] == "map" else S3IterableDataset
    options = dict(region=REGION, endpoint=spec["endpoint"], transform=read_all, s3client_config=_config())
    if spec["dataset"] == "iterable":
        if impl == "original":
            raise ValueError("the original has no shuffle: its first sample needs only the first page")
        options.update(shuffle=True, seed=0)
    m = Meter()
    m.start()  # the dataset and its client are made inside the measured time: a fresh client per run
    if impl == "ours":
        ds = cls.from_manifest(f"s3://{spec['bucket']}/{spec['manifest']}", **options)
    elif impl in ("ours_prefix", "original"):
        ds = cls.from_prefix(f"s3://{spec['bucket']}/{spec['prefix']}", **options)
    else:
        raise ValueError(impl)
    count = None
    if spec["dataset"] == "map":
        count = len(ds)
        listed = time.perf_counter() - m.t0
        sample = ds[0]
    else:
        sample = next(iter(ds))
        listed = None
    r = m.stop()
    if count is not None and count != spec["count"]:
        raise AssertionError(f"the dataset has {count} objects, expected {spec['count']}")
    if len(sample) != spec["object_size"]:
        raise AssertionError(f"the first sample has {len(sample)} bytes, expected {spec['object_size']}")
    r.update(count=count, first_sample_bytes=len(sample), listing_s=listed)
    return r


def w_tar(spec, impl):
    """Every sample of the tar shards under a prefix, in one process (each sample's bytes taken)."""
    m = Meter()
    count = nbytes = 0
    first = None
    if impl == "ours":
        from s3torchconnector import S3IterableDataset

        ds = S3IterableDataset.from_prefix(
            f"s3://{spec['bucket']}/{spec['prefix']}",
            region=REGION,
            endpoint=spec["endpoint"],
            s3client_config=_config(),
            shard_format="tar",
        )
        m.start()
        for sample in ds:
            data = sample["bin"]
            if first is None:
                first = (sample["__key__"], bytes(data))
            count += 1
            nbytes += len(data)
    elif impl == "webdataset":
        import webdataset as wds

        urls = [f"pipe:curl -s -f {spec['endpoint']}/{spec['bucket']}/{key}" for key in spec["keys"]]
        ds = wds.WebDataset(urls, shardshuffle=False)
        m.start()
        for sample in ds:
            data = sample["bin"]
            if first is None:
                first = (sample["__key__"], bytes(data))
            count += 1
            nbytes += len(data)
    else:
        raise ValueError(impl)
    r = m.stop()
    if count != spec["count"] or nbytes != count * spec["sample_size"]:
        raise AssertionError(f"got {count} samples ({nbytes} bytes), expected {spec['count']} of {spec['sample_size']}")
    if first[0] != "0000000":
        raise AssertionError(f"the first sample is {first[0]!r}, expected '0000000'")
    if spec.get("first_sample_path"):  # sample 0 holds W2's first object
        with open(spec["first_sample_path"], "rb") as f:
            if f.read() != first[1]:
                raise AssertionError("the first sample's bytes differ from the object it was made from")
    r.update(count=count, bytes=nbytes)
    return r


def _tar_sample(sample):
    """W12r's transform for our tar sample: its key and bytes."""
    return sample["__key__"], sample["bin"]


def _wids_sample(sample):
    """W12r's transform for a wids sample, whose fields are files (BytesIO) named ".<extension>"."""
    return sample["__key__"], sample[".bin"].getvalue()


def _object_sample(reader):
    """W12r's transform for an object: its key and bytes."""
    return reader.key, reader.read()


def object_key(spec, i):
    """The key of W2's object that W8's sample i holds (write_tar_shards)."""
    return f"{spec['objects_prefix']}{i % spec['objects']:06d}.bin"


def w_tar_random(spec, impl):
    """Every sample of W8's shards in a random order (RandomSampler) through a DataLoader: ours by
    S3MapDataset(shard_format="tar"), one ranged GET a sample; "ours_objects" the same samples as
    W2's objects, one GET each; "wids" webdataset's indexed dataset, which downloads each shard
    whole into a local cache and reads samples from there."""
    import tempfile

    import torch.utils.data

    count = spec["count"]
    cache = tempfile.TemporaryDirectory(prefix="w12r-wids-")
    if impl == "ours":
        from s3torchconnector import S3MapDataset

        ds = S3MapDataset.from_prefix(
            f"s3://{spec['bucket']}/{spec['prefix']}",
            region=REGION,
            endpoint=spec["endpoint"],
            s3client_config=_config(),
            transform=_tar_sample,
            shard_format="tar",
        )
    elif impl == "ours_objects":
        from s3torchconnector import S3MapDataset

        # Sample i holds W2's object i % objects (write_tar_shards).
        uris = [f"s3://{spec['bucket']}/{object_key(spec, i)}" for i in range(count)]
        ds = S3MapDataset.from_objects(
            uris, region=REGION, endpoint=spec["endpoint"], s3client_config=_config(), transform=_object_sample
        )
    elif impl == "wids":
        import wids

        shards = [
            {"url": f"{spec['endpoint']}/{spec['bucket']}/{key}", "nsamples": spec["per_shard"]} for key in spec["keys"]
        ]
        ds = wids.ShardListDataset(shards, cache_dir=cache.name, transformations=[_wids_sample], lru_size=len(shards))
    else:
        raise ValueError(impl)
    m = Meter()
    m.start()
    sampler = torch.utils.data.RandomSampler(ds, generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=spec["batch_size"], sampler=sampler, num_workers=spec["workers"], collate_fn=list
    )
    keys = []
    nbytes = 0
    first = None
    for batch in loader:
        for key, data in batch:
            keys.append(key)
            nbytes += len(data)
            if key in ("0000000", object_key(spec, 0)):
                first = data
    r = m.stop()
    cache.cleanup()
    names = (
        [object_key(spec, i) for i in range(count)] if impl == "ours_objects" else [f"{i:07d}" for i in range(count)]
    )
    if sorted(keys) != sorted(names) or nbytes != count * spec["sample_size"]:
        raise AssertionError(f"got {len(keys)} samples ({nbytes} bytes), expected each of {count} once")
    with open(spec["first_sample_path"], "rb") as f:
        if f.read() != first:
            raise AssertionError("sample 0000000's bytes differ from the object it was made from")
    r.update(count=count, bytes=nbytes)
    return r


# ---------------------------------------------------------------- the node cache (W9 rows)


def key_and_bytes(reader):
    """The transform of the cache rows: the key beside the bytes, so that each sample can be checked."""
    return reader.key, reader.read()


def tar_key_and_bytes(sample):
    """The same for a tar sample (ours and webdataset give the same dict): its __key__ and its member."""
    return sample["__key__"], sample["bin"]


class ServerLog:
    """The object requests nginx logged (the s3like_counted port's access log) between start() and stop()."""

    def __init__(self, spec):
        self.path = spec["access_log"]
        self.objects = f"/{spec['bucket']}/{spec['prefix']}"

    def start(self):
        self.offset = self._settled_size()

    def stop(self) -> dict:
        end = self._settled_size()
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            lines = f.read(end - self.offset).decode().splitlines()
        gets, heads, lists, fetched = 0, 0, 0, set()
        for line in lines:
            method, _, uri = line.split(" ", 2)
            if uri.startswith(self.objects) and method == "GET":
                gets += 1
                fetched.add(uri.split("?")[0])
            elif uri.startswith(self.objects):
                heads += method == "HEAD"
            elif "list-type=2" in uri:
                lists += 1
        return {"gets": gets, "heads": heads, "list_pages": lists, "keys_fetched": len(fetched)}

    def _settled_size(self) -> int:
        """The log's size once it stops growing: nginx logs a request just after sending its last byte,
        which the client may have read a moment before."""
        size = os.path.getsize(self.path)
        while True:
            time.sleep(0.1)
            now = os.path.getsize(self.path)
            if now == size:
                return size
            size = now


@contextmanager
def _cache_folder(spec, impl):
    """The node cache's folder for ours (W9n's processes are given the one they share), None without a cache."""
    if impl != "ours" or not spec.get("cache"):
        yield None
    elif spec.get("cache_dir"):
        yield spec["cache_dir"]
    else:
        # A fresh folder under the run's (cache_parent), left for the run to remove at its end: see run.py's
        # node_cache_folders for why not at once.
        yield tempfile.mkdtemp(prefix="bench-node-cache-", dir=spec.get("cache_parent"))


def _local_files(directory, prefix):
    """W9's peer: the files behind the objects, listed (sorted(os.listdir())) at each epoch's start and
    dealt to DataLoader workers as ours deals objects (worker i of n reads names[i::n]), open().read() each.
    A class made here: workloads.py imports torch only where a workload needs it."""
    import torch.utils.data

    class LocalFiles(torch.utils.data.IterableDataset):
        def __iter__(self):
            names = sorted(os.listdir(directory))
            worker = torch.utils.data.get_worker_info()
            shard, shards = (worker.id, worker.num_workers) if worker is not None else (0, 1)
            for name in itertools.islice(names, shard, None, shards):
                with open(os.path.join(directory, name), "rb") as f:
                    yield prefix + name, f.read()

    return LocalFiles()


def _epoch_reader(spec, impl, cache_dir):
    """A function that starts one epoch: an iterable of (key, bytes) per sample, and the function giving
    the client's cache counters where this process holds them (ours in one process), else None."""
    workers = spec.get("workers", 0)
    tar = spec.get("shard_format") == "tar"
    counters = None
    if impl in ("ours", "ours_nocache"):
        from s3torchconnector import S3IterableDataset

        cache = dict(cache_dir=cache_dir, cache_max_bytes=spec["cache_max_bytes"]) if cache_dir else {}
        ds = S3IterableDataset.from_prefix(
            f"s3://{spec['bucket']}/{spec['prefix']}",
            region=REGION,
            endpoint=spec["endpoint"],
            transform=tar_key_and_bytes if tar else key_and_bytes,
            s3client_config=_config(**cache),
            enable_sharding=workers > 0,
            **(dict(shard_format="tar") if tar else {}),
        )
        if cache and not workers:  # in a DataLoader the counters are the workers'
            counters = lambda: ds.metrics()["cache"]
    elif impl == "local_files":
        ds = _local_files(os.path.join(spec["data_dir"], spec["prefix"]), spec["prefix"])
    elif impl == "webdataset_local":
        import webdataset as wds

        directory = os.path.join(spec["data_dir"], spec["prefix"])

        def epoch():  # listed and made inside the epoch, as ours lists
            shards = [os.path.join(directory, name) for name in sorted(os.listdir(directory))]
            return wds.WebDataset(shards, shardshuffle=False).map(tar_key_and_bytes)

        return epoch, None
    else:
        raise ValueError(impl)
    if workers:
        import torch.utils.data

        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers)
        return lambda: loader, counters
    return lambda: ds, counters


def _read_epoch(spec, samples, keep_every=50):
    """Every sample of one epoch: their number and bytes, and every ``keep_every``-th (key, bytes) kept."""
    count = nbytes = 0
    kept = []
    for key, data in samples:
        if count % keep_every == 0:
            kept.append((key, data))
        count += 1
        nbytes += len(data)
    if count != spec["count"] or nbytes != count * spec["object_size"]:
        raise AssertionError(f"got {count} samples ({nbytes} bytes), expected {spec['count']} of {spec['object_size']}")
    return count, nbytes, kept


def _check_samples(spec, kept):
    """Each kept sample's bytes against the file nginx serves: the object's, or (a tar sample) the W2
    object that sample i was made from (i % small_count)."""
    for key, data in kept:
        if spec.get("shard_format") == "tar":
            name = f"{spec['sample_prefix']}{int(key) % spec['sample_objects']:06d}.bin"
        else:
            name = key
        with open(os.path.join(spec["data_dir"], name), "rb") as f:
            if f.read() != data:
                raise AssertionError(f"the bytes of sample {key} differ from the file {name}")


def w_epochs(spec, impl):
    """Epochs of a dataset (W2's objects, or W8's shards with shard_format="tar"): ``warm_epochs``
    untimed, then one timed. ours reads through the node cache (``cache``: a fresh folder, or W9n's
    shared ``cache_dir``) or without it (ours_nocache); the local peers read the files nginx serves.
    The timed epoch's object requests that reached nginx are counted (``access_log``) and must be
    ``expect_gets`` GETs and no HEAD."""
    with _cache_folder(spec, impl) as cache_dir:
        epoch, counters = _epoch_reader(spec, impl, cache_dir)
        for _ in range(spec.get("warm_epochs", 0)):
            _read_epoch(spec, epoch())
        if spec.get("wait_for_go"):  # W9n: every process ready (imports, dataset) before any reads
            print("READY", flush=True)
            sys.stdin.readline()
        server = ServerLog(spec) if spec.get("access_log") else None
        before = counters() if counters else None
        if server:
            server.start()
        m = Meter()
        m.start()
        count, nbytes, kept = _read_epoch(spec, epoch())
        r = m.stop()
        if server:
            r.update(server.stop())
        if before is not None:
            r["cache"] = {name: n - before[name] for name, n in counters().items()}
    _check_samples(spec, kept)
    if "expect_gets" in spec and (r["gets"], r["heads"]) != (spec["expect_gets"], 0):
        raise AssertionError(
            f"nginx logged {r['gets']} GETs and {r['heads']} HEADs of objects in the timed epoch, "
            f"expected {spec['expect_gets']} GETs and no HEAD"
        )
    cache, objects = r.get("cache"), spec.get("shards", spec["count"])
    if cache and spec.get("expect_gets") == 0 and (cache["misses"], cache["hits"]) != (0, objects):
        raise AssertionError(f"the timed epoch's cache counters {cache}: expected {objects} hits and no miss")
    r.update(count=count, bytes=nbytes, checked=len(kept))
    return r


def w_shared_cache(spec, impl):
    """``processes`` processes, each a DataLoader of ``workers`` workers reading the same objects through
    one node cache folder, started at one signal once all are ready: the GETs nginx logged for the objects
    (one per object when the node downloads each once) and the wall time until the last one finished."""
    with _cache_folder(spec, impl) as cache_dir:
        # Each process runs w_epochs, one timed epoch; the requests are counted here, over all of them.
        child = {k: v for k, v in spec.items() if k not in ("access_log", "expect_gets")}
        child.update(workload="epochs", cache_dir=cache_dir, warm_epochs=0, wait_for_go=True)
        command = [sys.executable, "-I", os.path.abspath(__file__), json.dumps(child)]
        procs = [
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(spec["processes"])
        ]
        try:
            for proc in procs:
                line = proc.stdout.readline()
                if line.strip() != "READY":
                    raise RuntimeError(f"a reader process did not get ready (exit {proc.wait()}): {line!r}")
            server = ServerLog(spec)
            server.start()
            m = Meter()
            m.start()
            for proc in procs:
                proc.stdin.write("go\n")
                proc.stdin.flush()
            outs = [proc.communicate()[0] for proc in procs]
            r = m.stop()
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    lines = [line for out in outs for line in out.splitlines() if line.startswith("RESULT ")]
    results = [json.loads(line[len("RESULT ") :]) for line in lines]
    exits = [proc.returncode for proc in procs]
    if len(results) != len(procs) or any(exits):
        raise AssertionError(f"{len(results)} of {len(procs)} reader processes finished (exits {exits})")
    r.update(server.stop())
    if r["keys_fetched"] != spec["count"]:
        raise AssertionError(f"nginx logged GETs of {r['keys_fetched']} of the {spec['count']} objects")
    r.update(
        downloads=r["gets"],
        count=spec["count"],
        process_seconds=[x["seconds"] for x in results],
    )
    return r


def w_list(spec, impl):
    """Every key under a prefix."""
    m = Meter()
    if impl in ("ours", "original", "boto3"):
        client = _boto3(spec["endpoint"]) if impl == "boto3" else _s3client(spec["endpoint"])
        m.start()
        count = len(_keys_page_by_page(spec, impl, client))
    elif impl == "s3fs":
        fs = _s3fs(spec["endpoint"])
        m.start()
        count = len(fs.find(f"{spec['bucket']}/{spec['prefix']}"))
    else:
        raise ValueError(impl)
    r = m.stop()
    if count != spec["count"]:
        raise AssertionError(f"listed {count} keys, expected {spec['count']}")
    r.update(count=count)
    return r


def _keys_page_by_page(spec, impl, client):
    """The keys under the spec's prefix, one ListObjectsV2 page after another: ``client`` is boto3's for
    impl boto3, else ours (or the original's) S3Client."""
    if impl == "boto3":
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=spec["bucket"], Prefix=spec["prefix"])
        return [o["Key"] for page in pages for o in page.get("Contents", [])]
    return [info.key for page in client.list_objects(spec["bucket"], spec["prefix"]) for info in page.object_info]


def listed_keys(prefix: str, count: int, folders: int):
    """W11/W11n's keys in S3's order (run.py writes their listing): ``count`` under ``prefix``, flat
    (folders=1) or in ``folders`` folders."""
    if folders == 1:
        return [f"{prefix}{i:07d}" for i in range(count)]
    per = count // folders
    return [f"{prefix}{i // per:04d}/{i % per:04d}" for i in range(count)]


def w_list_all(spec, impl):
    """Every key under a large prefix, as a map dataset needs them (W11): ours through
    S3MapDataset.from_prefix and len() (a parallel listing), ours_paged and boto3 page after page."""
    m = Meter()
    uri = f"s3://{spec['bucket']}/{spec['prefix']}"
    m.start()
    if impl == "ours":
        from s3torchconnector import S3MapDataset

        ds = S3MapDataset.from_prefix(uri, region=REGION, endpoint=spec["endpoint"], s3client_config=_config())
        len(ds)
        r = m.stop()
        keys = [item.key for item in ds._dataset_objects]
    elif impl in ("ours_paged", "boto3"):
        client = _boto3(spec["endpoint"]) if impl == "boto3" else _s3client(spec["endpoint"])
        keys = _keys_page_by_page(spec, impl, client)
        r = m.stop()
    else:
        raise ValueError(impl)
    if keys != listed_keys(spec["prefix"], spec["count"], spec["folders"]):
        raise AssertionError(f"listed {len(keys)} keys, not the {spec['count']} of the listing in its order")
    r.update(count=len(keys))
    return r


_SECOND_PROCESS = """
import json, sys, time
from s3torchconnector import S3ClientConfig, S3MapDataset

def private_bytes():
    with open("/proc/self/smaps_rollup") as f:
        return sum(int(line.split()[1]) * 1024 for line in f if line.startswith(("Private_Clean", "Private_Dirty")))

uri, endpoint, region, signed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
config = S3ClientConfig(force_path_style=True, unsigned=not signed)
before = private_bytes()
t0 = time.perf_counter()
ds = S3MapDataset.from_manifest(uri, region=region, endpoint=endpoint, transform=lambda r: r.read(), s3client_config=config)
count = len(ds)
sample = ds[0]
seconds = time.perf_counter() - t0
print(json.dumps(dict(seconds=seconds, private_growth=private_bytes() - before, count=count, sample=len(sample),
                      index=ds._dataset_objects.path)))
"""


def w_index(spec, impl):
    """W10, W10s, W10x: a manifest's objects through the node's shared index, built by the first
    process (``first``, ``iterable``) or mapped by a second one (``second``)."""
    import pickle
    import shutil

    from s3torchconnector import S3IterableDataset, S3MapDataset

    if impl != "ours":
        raise ValueError(impl)
    uri = f"s3://{spec['bucket']}/{spec['manifest']}"
    options = dict(region=REGION, endpoint=spec["endpoint"], transform=read_all, s3client_config=_config())
    folder = tempfile.mkdtemp(prefix="s3tc-bench-index-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.environ["S3TORCHCONNECTOR_INDEX_DIR"] = folder
    try:
        m = Meter()
        if spec["mode"] == "iterable":
            from torchdata.stateful_dataloader import StatefulDataLoader

            m.start()
            ds = S3IterableDataset.from_manifest(uri, shuffle=True, seed=0, **options)
            loader = StatefulDataLoader(ds, batch_size=None)
            sample = next(iter(loader))
            r = m.stop()
            r.update(state_bytes=len(pickle.dumps(loader.state_dict())))
        else:
            m.start()
            ds = S3MapDataset.from_manifest(uri, **options)
            count = len(ds)
            sample = ds[0]
            r = m.stop()
            if count != spec["count"]:
                raise AssertionError(f"the dataset has {count} objects, expected {spec['count']}")
            index_bytes = sum(entry.stat().st_size for entry in os.scandir(folder) if entry.name.endswith(".index"))
            r.update(count=count, index_bytes=index_bytes, bytes_per_entry=(r["rss_growth"] + index_bytes) / count)
        if spec["mode"] == "second":  # the first process (this one) holds the index while a second maps it
            signed = "1" if SPEC.get("signed") else "0"
            command = [sys.executable, "-c", _SECOND_PROCESS, uri, spec["endpoint"], REGION, signed]
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:
                raise AssertionError(f"the second process failed: {done.stderr[-2000:]}")
            second = json.loads(done.stdout)
            if second["index"] != ds._dataset_objects.path or second["count"] != spec["count"]:
                raise AssertionError(f"the second process did not map the first one's index: {second}")
            r = dict(
                seconds=second["seconds"],
                private_growth=second["private_growth"],
                private_bytes_per_entry=second["private_growth"] / second["count"],
                first_process_s=r["seconds"],
            )
            sample = b"x" * second["sample"]
        if len(sample) != spec["object_size"]:
            raise AssertionError(f"the first sample has {len(sample)} bytes, expected {spec['object_size']}")
        return r
    finally:
        shutil.rmtree(folder, ignore_errors=True)


WORKLOADS = {
    "index": w_index,
    "list_all": w_list_all,
    "probe": w_probe,
    "client_check": w_client_check,
    "startup": w_startup,
    "seq_read": w_seq_read,
    "iterable": w_iterable,
    "mixture": w_mixture,
    "map": w_map,
    "save": w_save,
    "load": w_load,
    "random_ranges": w_random_ranges,
    "stream": w_stream,
    "list": w_list,
    "first_sample": w_first_sample,
    "tar": w_tar,
    "tar_random": w_tar_random,
    "epochs": w_epochs,
    "shared_cache": w_shared_cache,
}


def main():
    spec = json.loads(sys.argv[1])
    SPEC.update(spec)
    impl = spec["impl"]
    if impl in ("original", "baseline"):
        _isolate_original()
    result = {}
    if impl in ("ours", "ours_prefix", "ours_nocache", "ours_paged", "ours_objects", "original", "baseline"):
        result.update(_package_info(impl))
        if impl in ("original", "baseline") and not result["inside_venv"]:
            raise SystemExit(f"the {impl}'s workload imported {result['module_file']}, not the venv's package")
        if impl != "original" and result["version"] == "1.5.0":
            raise SystemExit(f"the '{impl}' workload imported the original 1.5.0")
    # The baseline is our package at another commit: it runs our workloads.
    result.update(WORKLOADS[spec["workload"]](spec, "ours" if impl == "baseline" else impl) or {})
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
