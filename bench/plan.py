"""What is measured: the workloads, their sizes (full and --quick), clients and targets."""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

MIB = 1024 * 1024
GIB = 1024 * MIB
KIB = 1024

PEERS = [
    "ours",
    "original",
    "boto3",
    "s3fs",
    "curl",
    "ours_prefix",
    "webdataset",
    "ours_nocache",
    "local_files",
    "webdataset_local",
    "baseline",
    "ours_paged",
    "ours_objects",
    "wids",
]
LABELS = {
    "ours": "ours",
    "original": "original 1.5.0",
    "boto3": "boto3",
    "s3fs": "s3fs",
    "curl": "curl (1 conn.)",
    # Columns only some rows have (shown when a row of the run has them):
    "ours_prefix": "ours from_prefix",  # W4m/W4mx: ours listing the prefix, beside ours from_manifest
    "webdataset": "webdataset (pipe:curl)",  # W8
    "ours_nocache": "ours, cache off",  # W9c: ours' code without the node cache
    "local_files": "local files (open().read())",  # W9: the files behind the objects, read from local disk
    "webdataset_local": "webdataset (local files)",  # W9t: the files behind the shards
    "baseline": "ours at --baseline",  # an A/B of two builds of ours
    "ours_paged": "ours, one pagination",  # W11: S3Client.list_objects page after page, as before parallel listing
    "ours_objects": "ours, as objects",  # W12r: the tar samples as separate objects (W2's), one GET each
    "wids": "webdataset's wids",  # W12r: webdataset's indexed dataset (whole shards into a local cache)
}


@dataclass
class Sizes:
    big: int  # W1, W1s, W5, W6b
    stream: int  # W6
    checkpoint: int  # W3
    small_count: int  # W2*
    small_size: int
    peer_small_limit: int  # boto3/s3fs read the first N small objects only (one at a time)
    ranges: int  # W5 reads
    range_size: int
    list_keys: int  # W4
    manifest_keys: int  # W4m/W4mx: objects under the prefix (and lines in its manifest)
    parallel_list_keys: int  # W11/W11n: keys of a listing only (no objects behind them)
    list_folders: int  # W11n: the same keys in this many folders
    index_entries: int  # W10*: lines of the manifest whose shared index is measured
    shards: int  # W8: tar shards of small_size samples
    shard_size: int  # W8: bytes of samples (and their headers) per shard, about
    write_check: int  # the moto correctness run
    reps: int  # repetitions of the fast workloads
    timeout: int  # seconds per workload process


FULL = Sizes(
    big=1 * GIB,
    stream=2 * GIB,
    checkpoint=1 * GIB,
    small_count=10_000,
    small_size=100 * KIB,
    peer_small_limit=1_000,
    ranges=1_000,
    range_size=1 * MIB,
    list_keys=100_000,
    manifest_keys=100_000,
    parallel_list_keys=1_000_000,
    list_folders=1_000,
    index_entries=10_000_000,
    shards=8,
    shard_size=64 * MIB,
    write_check=256 * MIB,
    reps=3,
    timeout=1800,
)
QUICK = Sizes(
    big=256 * MIB,
    stream=512 * MIB,
    checkpoint=256 * MIB,
    small_count=1_000,
    small_size=100 * KIB,
    peer_small_limit=200,
    ranges=100,
    range_size=1 * MIB,
    list_keys=10_000,
    manifest_keys=10_000,
    parallel_list_keys=100_000,
    list_folders=100,
    index_entries=200_000,
    shards=2,
    shard_size=64 * MIB,
    write_check=64 * MIB,
    reps=1,
    timeout=600,
)


def human(n: int) -> str:
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


@dataclass
class Workload:
    id: str
    title: str
    kind: str  # the workload function in workloads.py ("curl" runs in the harness)
    profile: str  # loopback | s3like | sink | moto
    metric: str  # MB/s | objects/s | reads/s | keys/s | MiB
    impls: List[str]
    reps: int = 1
    params: Dict = field(default_factory=dict)
    peer_params: Dict = field(default_factory=dict)  # for boto3/s3fs only
    target: str = ""
    check: Optional[Callable[[Dict[str, float]], Optional[bool]]] = None
    note: str = ""
    from_runs_of: str = ""  # a row computed from another workload's runs (W6b from W1)
    value_field: str = ""  # "rss_growth" for memory rows
    target_value: Optional[float] = None  # memory rows: the bound in MiB, drawn on the chart
    lower_is_better: bool = False  # seconds and memory rows
    # The ratios shown for the row, (numerator, denominator): an impl of this row, or "ROW:impl"
    # for another row of the same run ("W2:ours"). The first is the table's ratio cell; none
    # means ours/original. check() sees the same names: this row's values and "ROW:impl".
    ratios: List[Tuple[str, str]] = field(default_factory=list)
    labels: Dict[str, str] = field(default_factory=dict)  # this row's own names of its impls
    detail: Optional[Tuple[str, str]] = None  # (result field, unit): a second number shown beside each value


def _peak_memory_row(row_id, what, kind, spec, impls, *, factor, of, below, below_text, note) -> Workload:
    """A memory row made from the runs of the row that runs ``kind`` on loopback (W6b from W1's): ours's
    largest peak RSS growth, at most ``factor`` times the object's size and below each client in ``below``."""
    bound = factor * spec["size"] / MIB

    def check(v):
        if v.get("ours") is None or any(v.get(p) is None for p in below):
            return None
        return v["ours"] <= bound and all(v["ours"] < v[p] for p in below)

    return Workload(
        row_id,
        what,
        kind,
        "loopback",
        "MiB",
        impls,
        0,
        spec,
        target=f"≤ {factor}x {of} ({bound:,.0f} MiB) and < {below_text}",
        value_field="rss_growth",
        target_value=bound,
        from_runs_of={"seq_read": "W1", "load": "W3l"}[kind],
        check=check,
        note=note,
    )


def _ratio(values, a="ours", b="original"):
    if values.get(a) is None or not values.get(b):
        return None
    return values[a] / values[b]


def _at_least(factor):
    def check(v):
        r = _ratio(v)
        return None if r is None else r >= factor

    return check


def _at_least_peer(factor, peer):
    def check(v):
        r = _ratio(v, "ours", peer)
        return None if r is None else r >= factor

    return check


def _w12_check(v):
    if v.get("ours") is None or not v.get("W2:ours"):
        return None
    return v["ours"] >= 0.9 * v["W2:ours"]


def _w12r_check(v):
    if v.get("ours") is None or not v.get("ours_objects") or not v.get("wids"):
        return None
    return v["ours"] >= 0.8 * v["ours_objects"] and v["ours"] >= v["wids"]


def _w5_check(v):
    best_peer = max((v[p] for p in ("boto3", "s3fs") if v.get(p)), default=None)
    if v.get("ours") is None or not v.get("original") or best_peer is None:
        return None
    return v["ours"] >= 2 * v["original"] and v["ours"] >= 1.2 * best_peer


def _w0_check(v):
    if v.get("ours") is None or not v.get("boto3"):
        return None
    return v["ours"] <= 0.5 * v["boto3"] and v["ours"] <= 50


def _w1q_check(v):
    if v.get("ours") is None or not v.get("boto3"):
        return None
    return v["ours"] >= 1.2 * v["boto3"]


def _w1_check(v):
    r = _ratio(v)
    if r is None or not v.get("curl") or not v.get("boto3"):
        return None
    return r >= 4 and v["ours"] >= 0.85 * v["curl"] and v["ours"] >= 1.2 * v["boto3"]


def _w1c_check(v):
    if v.get("ours") is None or not v.get("curl"):
        return None
    return v["ours"] <= 1.5 * v["curl"]


def _w3l_check(v):
    r = _ratio(v)
    if r is None or not v.get("boto3"):
        return None
    return r >= 2.5 and v["ours"] >= 1.3 * v["boto3"]


def _w3s_check(v):
    if v.get("ours") is None or not v.get("curl"):
        return None
    return v["ours"] >= 0.9 * v["curl"]


def keys(sizes: Sizes) -> Dict[str, str]:
    def tag(n):
        return human(n).replace(" ", "").lower()

    small_prefix = f"small-{sizes.small_count}/"
    assert sizes.small_count >= CONCURRENT_OBJECTS, "W9n reads W2's first 1,000 objects"
    return dict(
        big=f"obj-{tag(sizes.big)}.bin",
        quarter=f"obj-{tag(QUARTER)}.bin",  # W1q, in both modes
        tiny="tiny-1b.bin",  # W0's 1-byte GET
        stream=f"obj-{tag(sizes.stream)}.bin",
        checkpoint=f"ckpt-{tag(sizes.checkpoint)}.pt",
        small_prefix=small_prefix,
        # W4m: many tiny objects sharing one body (servers.py), and their manifest
        shared_prefix=f"shared-{sizes.manifest_keys}/",
        manifest=f"manifests/shared-{sizes.manifest_keys}.jsonl.gz",
        shards_prefix=f"shards-{tag(sizes.shard_size)}-{sizes.shards}/",
        # W9n: W2's first 1,000 objects (000000.bin to 000999.bin), listed under a prefix of their own
        concurrent_prefix=f"{small_prefix}000",
        # W11/W11n: listings only, flat (listed-N/0000000) and in folders (listed-FxK/0000/0000)
        flat_listing=f"listed-{sizes.parallel_list_keys}/",
        nested_listing=f"listed-{sizes.list_folders}x{sizes.parallel_list_keys // sizes.list_folders}/",
        # W10*: a manifest of many keys that share one body (as W4m's), in write_manifest's shape
        index_prefix="shared-index/",
        index_manifest=f"manifests/shared-index-{sizes.index_entries}.jsonl",
    )


QUARTER = 256 * MIB  # W1q: the cold read of an object a start-up cost cannot hide behind
SHARED_BODY = 4 * KIB  # W4m: the one body of all the shared- objects
TAR_HEADER = 512
CONCURRENT_OBJECTS = 1_000  # W9n: the objects that 4 processes read at once


def samples_per_shard(sizes: Sizes) -> int:
    """W8: samples of one member each (a 512-byte header and its data) that fit in shard_size."""
    member = TAR_HEADER + -(-sizes.small_size // TAR_HEADER) * TAR_HEADER
    return sizes.shard_size // member


def shard_keys(sizes: Sizes) -> List[str]:
    prefix = keys(sizes)["shards_prefix"]
    return [f"{prefix}shard-{i:06d}.tar" for i in range(sizes.shards)]


def _first_sample_check(v):
    if v.get("ours") is None or v.get("ours_prefix") is None:
        return None
    return v["ours_prefix"] / v["ours"] >= 10


def _w8_check(v):
    if v.get("ours") is None or not v.get("webdataset") or not v.get("W2:ours"):
        return None
    return v["ours"] >= 3 * v["webdataset"] and v["ours"] >= 10 * v["W2:ours"]


def _startup(sizes: Sizes, tiny_key: str, workload_id: str, description: str, note: str, **params) -> Workload:
    """W0 and W0s: a fresh process's client start-up to the byte of a 1-byte GET, unsigned or signed."""
    return Workload(
        workload_id,
        description,
        "startup",
        "loopback",
        "ms",
        ["ours", "original", "boto3"],
        max(5, sizes.reps),
        dict(key=tiny_key, size=1, **params),
        target="≤ 0.5x boto3 and ≤ 50 ms",
        check=_w0_check,
        lower_is_better=True,
        ratios=[("ours", "boto3"), ("ours", "original")],
        note=note,
    )


def build(sizes: Sizes, quick: bool) -> List[Workload]:
    s = sizes
    k = keys(sizes)
    big_key, stream_key, ckpt_key, small_prefix = k["big"], k["stream"], k["checkpoint"], k["small_prefix"]
    small = dict(prefix=small_prefix, count=s.small_count, object_size=s.small_size)
    all_peers = ["ours", "original", "boto3", "s3fs"]
    w = [
        _startup(
            s,
            k["tiny"],
            "W0",
            "client start-up: S3Client(...) to the byte of a 1-byte GET, fresh process, loopback",
            "imports not timed (torch, boto3); ours/original: S3Client(region, endpoint=..., "
            "s3client_config=S3ClientConfig(unsigned=True, force_path_style=True)).get_object(b, k).read(); "
            "boto3: boto3.client('s3', ...) then get_object()['Body'].read(); medians of at least 5",
        ),
        _startup(
            s,
            k["tiny"],
            "W0s",
            "W0 with signed requests, as every real client makes them (keys from the environment)",
            "as W0, with S3ClientConfig(force_path_style=True) and boto3's default SigV4: a signed client sets "
            "up the credential providers, and those need a TLS context (its trust store parsed) even over http",
            sign=True,
        ),
        Workload(
            "W1",
            f"one {human(s.big)} object into memory (sequential reader), loopback",
            "seq_read",
            "loopback",
            "MB/s",
            all_peers + ["curl"],
            s.reps,
            dict(key=big_key, size=s.big),
            target="≥ 85% of curl, ≥ 1.2x boto3, ≥ 4x original",
            check=_w1_check,
            ratios=[("ours", "original"), ("ours", "curl"), ("ours", "boto3")],
            note="S3MapDataset.from_objects([uri])[0].read(); boto3 get_object().read(); s3fs cat_file",
        ),
        Workload(
            "W1c",
            "CPU seconds (user + sys) per GiB of W1 (from the W1 runs)",
            "seq_read",
            "loopback",
            "CPU s/GiB",
            all_peers + ["curl"],
            0,
            dict(key=big_key, size=s.big),
            target="≤ 1.5x curl",
            value_field="cpu_per_gib",
            lower_is_better=True,
            from_runs_of="W1",
            check=_w1c_check,
            ratios=[("ours", "curl"), ("ours", "original")],
            note="the process's own CPU time over the measured read, per GiB (median of the W1 runs); curl's "
            "from the harness's child-process accounting",
        ),
        Workload(
            "W1q",
            f"one {human(QUARTER)} object into memory (sequential reader), loopback: the cold start of a "
            "fresh process included",
            "seq_read",
            "loopback",
            "MB/s",
            ["ours", "original", "boto3"],
            s.reps,
            dict(key=k["quarter"], size=QUARTER),
            target="≥ 1.2x boto3",
            check=_w1q_check,
            ratios=[("ours", "boto3"), ("ours", "original")],
            note="W1's code on a smaller object (W1 itself in --quick): ours' measured time includes making its "
            "native client (S3MapDataset makes it at the first read), boto3's client is made before",
        ),
        Workload(
            "W1s",
            f"one {human(s.big)} object into memory (sequential reader), s3like",
            "seq_read",
            "s3like",
            "MB/s",
            all_peers + ["curl"],
            s.reps,
            dict(key=big_key, size=s.big),
            target="≥ 3x original",
            check=_at_least(3),
        ),
        Workload(
            "W2",
            f"{s.small_count:,} objects of {human(s.small_size)}, S3IterableDataset, one process, s3like",
            "iterable",
            "s3like",
            "objects/s",
            all_peers,
            1,
            dict(small, workers=0),
            peer_params=dict(limit=s.peer_small_limit),
            target="≥ 20x original",
            check=_at_least(20),
            note=f"from_prefix (listing included), transform=reader.read(); boto3/s3fs: list, then one "
            f"GET at a time, first {s.peer_small_limit:,} objects",
        ),
        Workload(
            "W2x",
            "W2 with shuffle=True (seeded order, listing included)",
            "iterable",
            "s3like",
            "objects/s",
            ["ours"],
            1,
            dict(small, workers=0, shuffle=True),
            target="within 10% of W2 (ours)",
            note="the whole prefix is listed before the first object",
        ),
        Workload(
            "W2d",
            "the same through a DataLoader, 4 workers (sharded), s3like",
            "iterable",
            "s3like",
            "objects/s",
            ["ours", "original"],
            1,
            dict(small, workers=4),
            target="≥ 5x original",
            check=_at_least(5),
            note="batch_size=None; worker start-up included",
        ),
        Workload(
            "W2m",
            "S3MapDataset through a DataLoader (batch 64, 4 workers, shuffled), s3like",
            "map",
            "s3like",
            "objects/s",
            ["ours", "original", "boto3"],
            1,
            dict(small, workers=4, batch_size=64),
            peer_params=dict(limit=4 * s.peer_small_limit),
            target="≥ 5x original",
            check=_at_least(5),
            note=f"boto3: a map-style Dataset with one get_object per item, first {4 * s.peer_small_limit:,} objects",
        ),
        Workload(
            "W3s",
            f"torch.save of a {human(s.checkpoint)} state dict to the sink",
            "save",
            "sink",
            "MB/s",
            all_peers + ["curl"],
            s.reps,
            dict(key="ckpt/save.pt", size=s.checkpoint),
            target="≥ 90% of the sink's ceiling (curl -T)",
            check=_w3s_check,
            ratios=[("ours", "curl"), ("ours", "original"), ("ours", "boto3")],
            labels={"curl": "curl -T (ceiling)"},
            note="S3Checkpoint.writer; boto3: torch.save to BytesIO + upload_fileobj; s3fs: open('wb'); the "
            "ceiling: curl -T of the same number of bytes (W3l's checkpoint file) to the sink, one PUT",
        ),
        Workload(
            "W3l",
            f"torch.load of a {human(s.checkpoint)} checkpoint, loopback",
            "load",
            "loopback",
            "MB/s",
            all_peers,
            s.reps,
            dict(key=ckpt_key, size=s.checkpoint),
            target="≥ 2.5x original and ≥ 1.3x boto3",
            check=_w3l_check,
            ratios=[("ours", "original"), ("ours", "boto3")],
            note="S3Checkpoint.reader (sequential); boto3: get_object().read() + BytesIO; s3fs: open('rb')",
        ),
        Workload(
            "W3ls",
            f"torch.load of a {human(s.checkpoint)} checkpoint, s3like",
            "load",
            "s3like",
            "MB/s",
            all_peers,
            s.reps,
            dict(key=ckpt_key, size=s.checkpoint),
            target="≥ 3x original",
            check=_at_least(3),
            note="W3l where each connection is slow and far (20 ms to first byte, 90 MB/s): what the read-ahead buys",
        ),
        _peak_memory_row(
            "W3lb",
            f"peak RSS growth of torch.load of a {human(s.checkpoint)} checkpoint (from the W3l runs)",
            "load",
            dict(key=ckpt_key, size=s.checkpoint),
            all_peers,
            factor=1.1,
            of="the checkpoint",
            below=[p for p in all_peers if p != "ours"],
            below_text="every peer",
            note="the largest growth over the W3l runs; the loaded tensors themselves are the checkpoint's size",
        ),
        Workload(
            "W3c",
            f"torch.save of {human(s.write_check)} to moto, read back and compared",
            "save",
            "moto",
            "MB/s",
            ["ours", "original"],
            1,
            dict(key="ckpt/check.pt", size=s.write_check, verify=True),
            target="correct (bytes and tensors equal)",
            check=None,
            note="correctness run: boto3 reads the object back; tensors compared; and read back via S3Checkpoint.reader",
        ),
        Workload(
            "W4",
            f"list {s.list_keys:,} keys (moto server)",
            "list",
            "moto",
            "keys/s",
            all_peers,
            1,
            dict(prefix="keys/", count=s.list_keys),
            target="(no target; moto's speed dominates)",
        ),
        Workload(
            "W4m",
            f"seconds to the first sample of S3MapDataset over {s.manifest_keys:,} objects "
            "(len(ds), then ds[0]), from_manifest vs from_prefix, s3like",
            "first_sample",
            "s3like",
            "s",
            ["ours", "ours_prefix", "original"],
            s.reps,
            dict(
                dataset="map",
                prefix=k["shared_prefix"],
                manifest=k["manifest"],
                count=s.manifest_keys,
                object_size=SHARED_BODY,
            ),
            target="from_manifest ≥ 10x faster than from_prefix",
            check=_first_sample_check,
            lower_is_better=True,
            ratios=[("ours_prefix", "ours"), ("original", "ours")],
            labels=dict(ours="ours from_manifest", ours_prefix="ours from_prefix", original="original from_prefix"),
            note="ours = from_manifest (one GET of a .jsonl.gz manifest, checked whole; each read pinned to "
            "its ETag); ours from_prefix and the original list 1,000 keys a page, 20 ms each; dataset "
            "built, len(ds), ds[0] with transform=reader.read(), fresh process and client per run",
        ),
        Workload(
            "W4mx",
            "the same with S3IterableDataset(shuffle=True): seconds to next(iter(ds))",
            "first_sample",
            "s3like",
            "s",
            ["ours", "ours_prefix"],
            s.reps,
            dict(
                dataset="iterable",
                prefix=k["shared_prefix"],
                manifest=k["manifest"],
                count=s.manifest_keys,
                object_size=SHARED_BODY,
            ),
            target="from_manifest ≥ 10x faster than from_prefix",
            check=_first_sample_check,
            lower_is_better=True,
            ratios=[("ours_prefix", "ours")],
            labels=dict(ours="ours from_manifest", ours_prefix="ours from_prefix"),
            note="a seeded shuffle orders the whole listing before the first object; the next 63 GETs "
            "start with the first (prefetch)",
        ),
        Workload(
            "W5",
            f"{s.ranges:,} random {human(s.range_size)} reads in a {human(s.big)} object (range-based reader), s3like",
            "random_ranges",
            "s3like",
            "reads/s",
            all_peers,
            1,
            dict(key=big_key, size=s.big, count=s.ranges, read_size=s.range_size),
            target="≥ 2x original and ≥ 1.2x the best peer",
            check=_w5_check,
            ratios=[("ours", "original"), ("ours", "boto3"), ("ours", "s3fs")],
            note="S3ReaderConstructor.range_based() with its default 8 MiB buffer; seek + read(1 MiB); "
            "boto3 get_object(Range=); s3fs cat_file(start, end)",
        ),
        Workload(
            "W5n",
            "the same with range_based(buffer_size=0): one GET of exactly each read",
            "random_ranges",
            "s3like",
            "reads/s",
            ["ours", "original"],
            1,
            dict(key=big_key, size=s.big, count=s.ranges, read_size=s.range_size, reader_args=dict(buffer_size=0)),
            target="(no target; one exact GET per read, beside W5's default buffer)",
        ),
        Workload(
            "W5s",
            f"one {human(s.big)} object streamed in 1 MiB reads (range-based reader, default buffer), s3like",
            "stream",
            "s3like",
            "MB/s",
            all_peers,
            s.reps,
            dict(key=big_key, size=s.big, chunk=1 * MIB),
            target="≥ 3x boto3",
            check=_at_least_peer(3, "boto3"),
            ratios=[("ours", "boto3"), ("ours", "original")],
            note="S3ReaderConstructor.range_based() read(1 MiB) to the end; boto3 get_object()['Body'].read(1 MiB) "
            "in a loop (one connection); s3fs open('rb').read(1 MiB) (its default read-ahead cache)",
        ),
        Workload(
            "W6",
            f"peak RSS growth streaming a {human(s.stream)} object in 8 MiB reads (range-based), loopback",
            "stream",
            "loopback",
            "MiB",
            all_peers,
            1,
            dict(key=stream_key, size=s.stream, chunk=8 * MIB),
            target="< 300 MiB",
            value_field="rss_growth",
            target_value=300,
            check=lambda v: None if v.get("ours") is None else v["ours"] < 300,
            note="VmHWM (reset before the read) minus VmRSS before it; client start-up included",
        ),
        _peak_memory_row(
            "W6b",
            f"peak RSS growth of a sequential read of a {human(s.big)} object (from the W1 runs)",
            "seq_read",
            dict(key=big_key, size=s.big),
            all_peers,
            factor=1.05,
            of="object",
            below=["original"],
            below_text="original",
            note="the largest growth over the W1 runs; .read() returns a bytes object",
        ),
        Workload(
            "W8",
            f"{s.shards} tar shards of {human(s.shard_size)} ({samples_per_shard(s):,} samples of "
            f"{human(s.small_size)} each), one process, s3like",
            "tar",
            "s3like",
            "samples/s",
            ["ours", "webdataset"],
            s.reps,
            dict(
                prefix=k["shards_prefix"],
                keys=shard_keys(s),
                count=s.shards * samples_per_shard(s),
                sample_size=s.small_size,
            ),
            target="≥ 3x webdataset and ≥ 10x W2 (ours)",
            check=_w8_check,
            ratios=[("ours", "webdataset"), ("ours", "W2:ours")],
            note="ours: S3IterableDataset.from_prefix(shards, shard_format='tar') (listing included), every "
            "sample's bytes taken; webdataset 1.x: WebDataset(['pipe:curl -s -f URL', ...], shardshuffle=False), "
            "one curl (one connection) per shard in turn; the samples are W2's objects, so W2 is the same data "
            "as separate objects",
        ),
        Workload(
            "W12",
            "a MixedDataset of three W2-style sources (W2's prefix each), weights 0.5/0.3/0.2, one process, s3like",
            "mixture",
            "s3like",
            "objects/s",
            ["ours"],
            1,
            dict(small, workers=0, weights=[0.5, 0.3, 0.2]),
            target="≥ 0.9x W2 (ours)",
            check=_w12_check,
            ratios=[("ours", "W2:ours")],
            note="every source lists W2's prefix and reads its objects (stop='all_exhausted': 3x W2's objects), "
            "with the defaults a user gets: each source has its own read-ahead (prefetch=64), three in all",
        ),
        Workload(
            "W12r",
            f"W8's {s.shards * samples_per_shard(s):,} samples read at random (RandomSampler) through "
            "S3MapDataset(shard_format='tar'), DataLoader (batch 64, 4 workers), s3like",
            "tar_random",
            "s3like",
            "samples/s",
            ["ours", "ours_objects", "wids"],
            1,
            dict(
                prefix=k["shards_prefix"],
                keys=shard_keys(s),
                per_shard=samples_per_shard(s),
                count=s.shards * samples_per_shard(s),
                sample_size=s.small_size,
                objects_prefix=k["small_prefix"],
                objects=s.small_count,
                workers=4,
                batch_size=64,
            ),
            target="≥ 0.8x the same samples as objects, and ≥ wids",
            check=_w12r_check,
            ratios=[("ours", "ours_objects"), ("ours", "wids")],
            note="ours: one ranged GET a sample, the offsets from the index beside each shard (listing and indexes "
            "included); ours, as objects: S3MapDataset.from_objects of W2's objects that the samples hold, one GET "
            "each; wids 0.1.11: ShardListDataset over the shards' URLs, which downloads each shard whole (curl) into a "
            "fresh local cache and reads samples from there",
        ),
        *_cache_rows(s, k, small),
        *_index_rows(s, k),
        *_listing_rows(s, k),
    ]
    return w


def _index_rows(s: Sizes, k: Dict[str, str]) -> List[Workload]:
    """W10, W10s, W10x: a manifest's shared index, each followed by the row of its second number
    (memory, state) computed from the same runs."""
    n = s.index_entries
    spec = dict(prefix=k["index_prefix"], manifest=k["index_manifest"], count=n, object_size=SHARED_BODY)
    folder = "a fresh index folder in /dev/shm per run (S3TORCHCONNECTOR_INDEX_DIR), removed after it"
    memory = "(peak RSS growth + the index file's size) / entries"

    def at_most(bound):
        return lambda v: None if v.get("ours") is None else v["ours"] <= bound

    def rows(row, second_row, mode, title, bound, note, detail, second_title, unit, second_bound, target):
        field, detail_unit = detail
        timed = Workload(
            row,
            title,
            "index",
            "loopback",
            "s",
            ["ours"],
            s.reps,
            dict(spec, mode=mode),
            target=f"≤ {bound} s",
            check=at_most(bound),
            lower_is_better=True,
            detail=detail,
            note=note,
        )
        second = Workload(
            second_row,
            second_title,
            "index",
            "loopback",
            unit,
            ["ours"],
            0,
            dict(spec, mode=mode),
            target=target,
            check=at_most(second_bound),
            lower_is_better=True,
            from_runs_of=row,
            value_field=field,
        )
        return [timed, second]

    return [
        *rows(
            "W10",
            "W10m",
            "first",
            f"S3MapDataset.from_manifest over {n:,} entries, the node's first process: seconds to len(ds), ds[0]",
            5,
            f"one HEAD and one GET of the manifest (about {n * 75 // 10**6:,} MB of JSON Lines), its lines "
            f"read into the index file; {folder}; memory per entry: {memory}",
            ("bytes_per_entry", "B/entry"),
            f"the same: memory per entry, the shared index included, {memory}",
            "B/entry",
            40,
            "≤ 40 B/entry",
        ),
        *rows(
            "W10s",
            "W10sm",
            "second",
            "the same in a second process of the node while the first holds the index: seconds to len(ds), ds[0]",
            1,
            "a new interpreter (imports before the time); its own memory: growth of Private_Clean + "
            "Private_Dirty (/proc/self/smaps_rollup) over the timed part, per entry",
            ("private_bytes_per_entry", "B/entry own"),
            "the same: growth of the second process's own memory (not shared) per entry",
            "B/entry",
            8,
            "≤ 8 B/entry",
        ),
        *rows(
            "W10x",
            "W10xs",
            "iterable",
            f"S3IterableDataset.from_manifest(shuffle=True) over {n:,} entries: seconds to the first sample "
            "through StatefulDataLoader",
            5,
            f"StatefulDataLoader(ds, batch_size=None), next(iter(loader)); the index built inside the time; "
            f"{folder}; the state: len(pickle.dumps(loader.state_dict())) after that sample",
            ("state_bytes", "B of state"),
            "the same: size of the StatefulDataLoader's state",
            "bytes",
            4096,
            "≤ 4 KiB",
        ),
    ]


def _listing_rows(s: Sizes, k: Dict[str, str]) -> List[Workload]:
    """W11, W11n: a map dataset's listing of a large prefix, listed in parallel, against one pagination."""
    impls = ["ours", "ours_paged", "boto3"]
    note = (
        "ours: S3MapDataset.from_prefix(uri) then len(ds) (the dataset made inside the time; it lists in "
        "parallel, at most 16 requests in flight); ours, one pagination: S3Client.list_objects(bucket, prefix), "
        "page after page, as every listing was before; boto3: the list_objects_v2 paginator. Each run's keys "
        "checked against the listing's: every key once, in S3's order. nginx answers each page after 20 ms from "
        "pages written beforehand (start-after from the page it falls in); no objects behind the keys"
    )
    rows = []
    for row, prefix, folders, shape in (
        ("W11", k["flat_listing"], 1, "flat keys"),
        (
            "W11n",
            k["nested_listing"],
            s.list_folders,
            f"{s.list_folders:,} folders of {s.parallel_list_keys // s.list_folders:,} keys",
        ),
    ):
        rows.append(
            Workload(
                row,
                f"S3MapDataset.from_prefix over {s.parallel_list_keys:,} keys ({shape}), s3like (20 ms a page): "
                "seconds to len()",
                "list_all",
                "s3like",
                "s",
                impls,
                s.reps,
                dict(prefix=prefix, count=s.parallel_list_keys, folders=folders),
                target="≤ 4 s, every key once, in S3's order",
                check=lambda v: None if v.get("ours") is None else v["ours"] <= 4,
                lower_is_better=True,
                ratios=[("ours_paged", "ours"), ("boto3", "ours")],
                labels=dict(ours="ours, in parallel"),
                note=note,
            )
        )
    return rows


# W9, W9c and W9n's DataLoader set-up, for ours and the local files alike.
LOADER = dict(workers=2)
LOADER_TEXT = (
    "DataLoader(ds, batch_size=None, num_workers=2), each epoch's workers started inside its time; ours "
    "S3IterableDataset.from_prefix(..., enable_sharding=True), transform=(reader.key, reader.read())"
)
CACHE_TEXT = "S3ClientConfig(cache_dir=<a fresh folder under bench/data, removed when the whole run ends>, cache_max_bytes=2x the data)"


def _cache_rows(s: Sizes, k: Dict[str, str], small: Dict) -> List[Workload]:
    """W9, W9t, W9c, W9n: the node cache. On the s3like_counted port, whose requests nginx logs: each
    run asserts the object requests nginx saw in its timed part (expect_gets), W9n reports them."""
    # cache_max_bytes: twice the bytes read, so nothing is evicted.
    objects = dict(small, **LOADER, cache=True, cache_max_bytes=2 * s.small_count * s.small_size)
    shards = dict(
        prefix=k["shards_prefix"],
        count=s.shards * samples_per_shard(s),
        object_size=s.small_size,
        shard_format="tar",
        shards=s.shards,
        sample_prefix=k["small_prefix"],  # sample i holds W2's object i % small_count: checked against it
        sample_objects=s.small_count,
        cache=True,
        cache_max_bytes=2 * s.shards * s.shard_size,
    )
    # Epoch 1 fills the cache untimed; epoch 2 is timed and may send S3 nothing but the listing.
    warm = dict(warm_epochs=1, expect_gets=0)
    return [
        Workload(
            "W9",
            f"second epoch of W2's {s.small_count:,} objects of {human(s.small_size)} from a warm node cache, "
            "DataLoader (2 workers), s3like",
            "epochs",
            "s3like_counted",
            "objects/s",
            ["ours", "local_files"],
            s.reps,
            dict(objects, **warm),
            target="≥ 0.8x the same files read from local disk",
            check=_at_least_peer(0.8, "local_files"),
            ratios=[("ours", "local_files")],
            note=f"{LOADER_TEXT}, {CACHE_TEXT}; epoch 1 (untimed) fills the cache; epoch 2 is timed: workers' "
            "start-up, the listing (from_prefix lists every epoch: 20 ms a page) and the reads, and nginx logs "
            "no GET or HEAD of an object in it (asserted). local files: the files nginx serves for these "
            "objects (bench/data/bench/small-N/), sorted(os.listdir()) inside the timed epoch, dealt to the "
            "workers as ours deals objects (worker i reads names[i::2]), open().read() each; its epoch 1 is "
            "untimed too, so both read from the page cache. Every 50th sample's bytes checked against its file",
        ),
        Workload(
            "W9t",
            f"second epoch of W8's {s.shards} tar shards ({samples_per_shard(s):,} samples each) from a warm node "
            "cache, one process, s3like",
            "epochs",
            "s3like_counted",
            "samples/s",
            ["ours", "webdataset_local"],
            s.reps,
            dict(shards, **warm),
            target="≥ 0.8x webdataset on the same shards as local files",
            check=_at_least_peer(0.8, "webdataset_local"),
            ratios=[("ours", "webdataset_local"), ("ours", "W8:ours")],
            note=f"ours: S3IterableDataset.from_prefix(shards, shard_format='tar'), {CACHE_TEXT}, one process as "
            "W8; epoch 1 (untimed) fills the cache; epoch 2 is timed (listing included): the client's cache "
            "counters gain one hit per shard and no miss, and nginx logs no GET or HEAD of a shard (both "
            "asserted). webdataset 1.x: WebDataset([local paths], shardshuffle=False) over the files nginx serves "
            "for W8's shards (bench/data/bench/shards-*/), made inside the timed epoch from sorted(os.listdir()); "
            "its epoch 1 untimed too. Each sample's __key__ and 'bin' taken; every 50th checked against the W2 "
            "object it was made from",
        ),
        Workload(
            "W9c",
            f"first epoch of W2's {s.small_count:,} objects with the node cache on (filling it) vs off, "
            "DataLoader (2 workers), s3like",
            "epochs",
            "s3like_counted",
            "objects/s",
            ["ours", "ours_nocache"],
            s.reps,
            dict(objects, warm_epochs=0, expect_gets=s.small_count),
            target="≥ 0.9x the cache off",
            check=_at_least_peer(0.9, "ours_nocache"),
            ratios=[("ours", "ours_nocache")],
            labels=dict(ours="ours, cache on"),
            note=f"W9's set-up, its first epoch timed (listing included): ours with {CACHE_TEXT}, empty: each "
            "object downloaded into the cache and served from the file written; ours, cache off: the same code "
            "and S3ClientConfig without cache_dir. nginx logs one GET per object and no HEAD for both (asserted)",
        ),
        Workload(
            "W9n",
            f"{CONCURRENT_OBJECTS:,} objects (W2's first) read at once by 4 processes x 2 DataLoader workers "
            "through one node cache, s3like: objects downloaded",
            "shared_cache",
            "s3like_counted",
            "GETs",
            ["ours"],
            s.reps,
            dict(
                prefix=k["concurrent_prefix"],
                count=CONCURRENT_OBJECTS,
                object_size=s.small_size,
                processes=4,
                **LOADER,
                cache=True,
                cache_max_bytes=2 * CONCURRENT_OBJECTS * s.small_size,
            ),
            target=f"= {CONCURRENT_OBJECTS:,} (one download per object for the node)",
            check=lambda v: None if v.get("ours") is None else v["ours"] == CONCURRENT_OBJECTS,
            lower_is_better=True,
            value_field="downloads",
            detail=("seconds", "s"),
            note=f"4 processes started by the workload, each {LOADER_TEXT} over s3://bench/{k['concurrent_prefix']} "
            "(its own listing: ETags known), one shared cache folder (fresh, removed after); each process imports "
            "and builds its DataLoader, then all start at one signal. The value: the GetObject requests for these "
            "keys that nginx logged (counted at the server: the s3like_counted port's access log), every key "
            "among them (asserted); in brackets, seconds from the signal until the last process finished. Each "
            "process checks its count and bytes",
        ),
    ]


def first_sample_ids(wanted: set) -> set:
    """--only W4m also runs its iterable variant W4mx."""
    return wanted | ({"W4mx"} if "W4m" in wanted else set())


def data_needed(sizes: Sizes) -> Dict[str, int]:
    """The generated objects: key -> size."""
    k = keys(sizes)
    return {k["big"]: sizes.big, k["stream"]: sizes.stream, k["quarter"]: QUARTER, k["tiny"]: 1}
