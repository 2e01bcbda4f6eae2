"""What the client puts on the wire, seen by the fault proxy in front of moto: the checksums it sends
and checks, the GETs it keeps in flight ahead of the reader, no HEAD where the size is already known,
listings fetched page by page, and bounded memory when reading a large object by ranges.

Each test names a behaviour users rely on and fails when that behaviour is removed. Where a test needs
requests to be in flight at once, the proxy holds one back until the others have arrived (a gate), so
nothing here depends on timing; a gate that is never opened only delays a failing test.
"""

import base64
import hashlib
import io
import json
import threading
import urllib.request
import zlib

import pytest
from python_script import run_python
from torch.utils.data import DataLoader

from s3torchconnector import S3Checkpoint, S3Exception, S3IterableDataset, S3MapDataset
from s3torchconnector._listing.parallel_listing import list_in_parallel
from s3torchconnector._s3client import S3Client, S3ClientConfig
from s3torchconnector.s3reader import S3ReaderConstructor

from .proxy import FaultProxy, corrupt, error, forward, rewrite, synthetic, synthetic_bytes

KIB = 1024
MIB = 1024 * KIB
PART = 5 * MIB  # the smallest part size: multipart uploads of 5 MiB and a bit
GATE_SECONDS = 20  # how long a held request waits for the others before it gives up (a failing test)


# ---------------------------------------------------------------------- helpers


def client_via(proxy: FaultProxy, s3, **config) -> S3Client:
    return S3Client(s3.region, endpoint=proxy.url, s3client_config=S3ClientConfig(part_size=PART, **config))


def put_objects(s3, keys, body: bytes) -> None:
    """Creates the objects straight in moto (not through the proxy), many uploads at a time."""
    client = S3Client(s3.region, endpoint=s3.endpoint)
    keys = list(keys)
    for start in range(0, len(keys), 64):
        writers = [client.put_object(s3.bucket, key) for key in keys[start : start + 64]]
        for writer in writers:
            writer.write(body)
        for writer in writers:
            writer.close()


def dataset_keys(count: int):
    return [f"data/{i:04d}.bin" for i in range(count)]


def object_gets(s3, prefix: str = ""):
    """Matches the GETs of objects under prefix (not listings, which are GETs of the bucket)."""
    start = f"/{s3.bucket}/{prefix}"
    return lambda r: r.method == "GET" and r.path.startswith(start) and not r.query


def objects_requested(entries) -> int:
    """How many distinct objects the requests (or log entries) are for: a retried GET counts once."""
    return len({getattr(entry, "request", entry).path for entry in entries})


def heads(r) -> bool:
    return r.method == "HEAD"


def listings(r) -> bool:
    return r.method == "GET" and r.query.get("list-type") == "2"


def gate(proxy: FaultProxy, predicate, count: int):
    """A fault that holds its request until ``count`` requests matching predicate have arrived."""
    return forward(before=lambda _request: proxy.wait_for(predicate, count, GATE_SECONDS))


def _crc32c_table():
    table = []
    for n in range(256):
        for _ in range(8):
            n = (n >> 1) ^ 0x82F63B78 if n & 1 else n >> 1
        table.append(n)
    return table


_CRC32C_TABLE = _crc32c_table()


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def checksum(algorithm: str, data: bytes) -> str:
    """The value S3 expects in x-amz-checksum-<algorithm>: base64 of the big-endian digest."""
    if algorithm == "CRC32C":
        digest = _crc32c(data).to_bytes(4, "big")
    elif algorithm == "CRC32":
        digest = zlib.crc32(data).to_bytes(4, "big")
    else:
        digest = hashlib.new(algorithm.lower(), data).digest()
    return base64.b64encode(digest).decode()


def checksum_fields(request) -> dict:
    """Every header and trailer of a request that names or carries a checksum."""
    fields = {**request.headers, **request.trailers}
    return {
        name: value
        for name, value in fields.items()
        if name.startswith(("x-amz-checksum", "x-amz-sdk-checksum")) or name == "x-amz-trailer"
    }


def upload(s3, proxy, key: str, data: bytes, **config) -> list:
    """Writes data through the proxy; returns the requests that carried it (one PUT, or the parts)."""
    with client_via(proxy, s3, **config).put_object(s3.bucket, key) as writer:
        writer.write(data)
    assert s3.get(key) == data
    path = f"/{s3.bucket}/{key}"
    carriers = proxy.received(lambda r: r.path == path and r.method == "PUT")
    return sorted(carriers, key=lambda r: int(r.query.get("partNumber", 0)))


SIZES = {"single_put": 1000, "multipart": PART + 1000}  # the last request carries 1000 bytes


# ---------------------------------------------------------------------- 1. checksums


@pytest.mark.parametrize("size_name", sorted(SIZES))
@pytest.mark.parametrize("configured", ["default", "CRC32", "SHA256"])
def test_every_upload_request_carries_the_configured_checksum(s3, proxy, configured, size_name):
    """S3 verifies uploads only against a checksum the client sends: CRC32C unless configured
    otherwise, on the single PUT and on every part, as a trailer of the streamed body."""
    algorithm = "CRC32C" if configured == "default" else configured
    config = {} if configured == "default" else {"upload_checksum": configured}
    data = hashlib.shake_256(b"upload").digest(SIZES[size_name])
    trailer = f"x-amz-checksum-{algorithm.lower()}"

    carriers = upload(s3, proxy, "up.bin", data, **config)

    assert len(carriers) == (1 if size_name == "single_put" else 2)
    for request in carriers:
        sent = checksum_fields(request) or "no checksum"
        assert request.headers.get("x-amz-trailer") == trailer, f"{request.target} carried {sent}, not {trailer}"
        assert trailer in request.trailers, f"{request.target} announced {trailer} but its body had {sent}"
    last = carriers[-1]  # 1000 bytes: cheap to check the value, not only its presence
    assert last.trailers[trailer] == checksum(algorithm, data[-1000:]), "the checksum is not of the bytes sent"
    if size_name == "multipart":
        (create,) = proxy.received(lambda r: r.method == "POST" and "uploads" in r.query)
        sent = checksum_fields(create)
        assert create.headers.get("x-amz-checksum-algorithm") == algorithm, f"CreateMultipartUpload sent {sent}"


@pytest.mark.parametrize("size_name", sorted(SIZES))
def test_upload_checksum_none_sends_no_checksum(s3, proxy, size_name):
    """upload_checksum=None is for stores that refuse checksums: nothing names one on any request."""
    data = hashlib.shake_256(b"upload").digest(SIZES[size_name])

    upload(s3, proxy, "up.bin", data, upload_checksum=None)

    sent = {f"{r.method} {r.target}": checksum_fields(r) for r in proxy.received()}
    assert not any(sent.values()), f"checksums sent with upload_checksum=None: {sent}"


def put_with_crc32(s3, key: str, data: bytes) -> None:
    """Stored with a checksum moto returns on GET (it keeps only checksums named by
    x-amz-sdk-checksum-algorithm, which boto3 sends and the CRT does not)."""
    s3.boto3.put_object(Bucket=s3.bucket, Key=key, Body=data, ChecksumAlgorithm="CRC32")


VALIDATING_READERS = {
    "S3Client_validate_checksums": lambda s3, proxy: client_via(
        proxy, s3, validate_checksums=True, max_attempts=2
    ).get_object(s3.bucket, "obj.bin"),
    "S3Checkpoint_by_default": lambda s3, proxy: S3Checkpoint(s3.region, endpoint=proxy.url).reader(s3.uri("obj.bin")),
}

PLAIN_READERS = {
    "S3Client_validate_checksums_False": lambda s3, proxy: client_via(proxy, s3, validate_checksums=False).get_object(
        s3.bucket, "obj.bin"
    ),
    "S3Client_by_default": lambda s3, proxy: S3Client(s3.region, endpoint=proxy.url).get_object(s3.bucket, "obj.bin"),
}


@pytest.mark.parametrize("reader_name", sorted(VALIDATING_READERS))
def test_validating_reader_refuses_a_corrupted_download(s3, proxy, reader_name):
    """A byte flipped on the way (length kept) must not reach a checkpoint load or a validating
    client: the read raises S3Exception."""
    data = hashlib.shake_256(b"checked").digest(100 * KIB)
    put_with_crc32(s3, "obj.bin", data)
    rule = proxy.add(object_gets(s3, "obj.bin"), corrupt())
    reader = VALIDATING_READERS[reader_name](s3, proxy)

    with pytest.raises(S3Exception) as caught:
        reader.read()

    assert rule.fired >= 1, "the body was never corrupted: the test proved nothing"
    assert "checksum" in str(caught.value).lower(), str(caught.value)
    assert all(
        r.headers.get("x-amz-checksum-mode", "").lower() == "enabled" for r in proxy.received(object_gets(s3))
    ), "the GETs did not ask for the object's checksum"


@pytest.mark.parametrize("reader_name", sorted(PLAIN_READERS))
def test_plain_client_does_not_validate_downloads(s3, proxy, reader_name):
    """Validation is off for plain clients (it costs a HEAD per object): the bytes come back as
    received, and no request asks for a checksum. This also shows the corruption above is real."""
    data = hashlib.shake_256(b"checked").digest(100 * KIB)
    put_with_crc32(s3, "obj.bin", data)
    proxy.add(object_gets(s3, "obj.bin"), corrupt())

    got = PLAIN_READERS[reader_name](s3, proxy).read()

    assert len(got) == len(data) and got != data
    assert sum(a != b for a, b in zip(got, data)) == 1
    assert not proxy.received(heads)
    assert not any("x-amz-checksum-mode" in r.headers for r in proxy.received())


# ---------------------------------------------------------------------- 2. read-ahead and batch fetch


def test_iterable_dataset_keeps_the_next_gets_in_flight(s3, proxy):
    """Small objects are latency-bound: by the time the first sample has been read, the GETs of all
    the next ones (40 < the default prefetch of 64) have reached the server."""
    keys = dataset_keys(40)
    put_objects(s3, keys, b"x" * 1000)
    is_get = object_gets(s3, "data/")
    proxy.add(object_gets(s3, keys[0]), gate(proxy, is_get, len(keys)))
    seen = []

    def transform(reader):
        data = reader.read()
        seen.append(objects_requested(proxy.received(is_get)))
        return data

    dataset = S3IterableDataset.from_prefix(s3.uri("data/"), region=s3.region, endpoint=proxy.url, transform=transform)
    samples = list(dataset)

    assert samples == [b"x" * 1000] * len(keys)
    assert seen[0] >= len(keys), f"only {seen[0]} of {len(keys)} GETs were sent before the first sample was read"


def test_prefetch_bytes_bounds_the_gets_in_flight(s3, proxy):
    """prefetch_bytes caps the listed bytes fetched ahead: with 1000-byte objects and 5000 bytes,
    five GETs are sent before the first sample is read, and never more than five are unanswered."""
    keys = dataset_keys(40)
    put_objects(s3, keys, b"x" * 1000)
    is_get = object_gets(s3, "data/")
    in_flight = []

    def count_in_flight(_request):
        answered = objects_requested(proxy.requests(is_get))
        in_flight.append(objects_requested(proxy.received(is_get)) - answered)

    proxy.add(object_gets(s3, keys[0]), gate(proxy, is_get, 5))
    proxy.add(is_get, forward(before=count_in_flight))
    seen = []

    def transform(reader):
        data = reader.read()
        seen.append(objects_requested(proxy.received(is_get)))
        return data

    dataset = S3IterableDataset.from_prefix(
        s3.uri("data/"), region=s3.region, endpoint=proxy.url, transform=transform, prefetch_bytes=5000
    )
    samples = list(dataset)

    assert samples == [b"x" * 1000] * len(keys)
    assert seen[0] == 5, f"{seen[0]} GETs were sent before the first sample was read, not 5"
    assert max(in_flight) <= 5, f"up to {max(in_flight)} GETs were in flight at once"


def test_map_dataset_batch_sends_every_get_before_reading_the_first(s3, proxy):
    """A DataLoader batch goes through __getitems__, which starts all of its GETs at once: by the
    time the first sample is read, the server has received the whole batch's GETs."""
    keys = dataset_keys(40)
    put_objects(s3, keys, b"y" * 1000)
    is_get = object_gets(s3, "data/")
    batch = 16
    proxy.add(object_gets(s3, keys[0]), gate(proxy, is_get, batch))
    seen = []

    def transform(reader):
        data = reader.read()
        seen.append(objects_requested(proxy.received(is_get)))
        return data

    dataset = S3MapDataset.from_prefix(s3.uri("data/"), region=s3.region, endpoint=proxy.url, transform=transform)
    first_batch = next(iter(DataLoader(dataset, batch_size=batch, collate_fn=list)))

    assert first_batch == [b"y" * 1000] * batch
    assert seen[0] >= batch, f"only {seen[0]} of the batch's {batch} GETs were sent before its first sample was read"


# ---------------------------------------------------------------------- 3. no HEAD when the size is known


def seek_to_end_then_read(reader):
    """What a transform does to learn an object's size first: SEEK_END needs the size."""
    size = reader.seek(0, io.SEEK_END)
    reader.seek(0)
    return size, bytes(reader.read())


READER_CONSTRUCTORS = {"sequential": S3ReaderConstructor.sequential, "range_based": S3ReaderConstructor.range_based}


@pytest.mark.parametrize("reader_name", sorted(READER_CONSTRUCTORS))
def test_dataset_reads_send_no_head(s3, proxy, reader_name):
    """Listed objects come with their size: a dataset's reads, seeks to the end included, cost one
    GET each and no HEAD (a HEAD per sample would double the requests)."""
    keys = dataset_keys(6)
    put_objects(s3, keys, b"z" * 3000)

    dataset = S3MapDataset.from_prefix(
        s3.uri("data/"),
        region=s3.region,
        endpoint=proxy.url,
        transform=seek_to_end_then_read,
        reader_constructor=READER_CONSTRUCTORS[reader_name](),
    )
    samples = [dataset[i] for i in range(len(dataset))]

    assert samples == [(3000, b"z" * 3000)] * len(keys)
    assert not proxy.received(heads), f"HEADs of listed objects: {[r.target for r in proxy.received(heads)]}"


@pytest.mark.parametrize("reader_name", sorted(READER_CONSTRUCTORS))
def test_get_object_sends_a_head_only_without_object_info(s3, proxy, reader_name):
    """S3Client.get_object(object_info=...) takes the size from the listing; without it, the size a
    seek to the end needs costs a HEAD (which shows the proxy would have seen one)."""
    put_objects(s3, ["obj.bin"], b"w" * 3000)
    client = S3Client(s3.region, endpoint=proxy.url)
    (info,) = next(iter(client.list_objects(s3.bucket, "obj.bin"))).object_info
    constructor = READER_CONSTRUCTORS[reader_name]()

    reader = client.get_object(s3.bucket, "obj.bin", object_info=info, reader_constructor=constructor)
    with_info = seek_to_end_then_read(reader)
    heads_with_info = len(proxy.received(heads))
    without_info = seek_to_end_then_read(client.get_object(s3.bucket, "obj.bin", reader_constructor=constructor))

    assert with_info == without_info == (3000, b"w" * 3000)
    assert heads_with_info == 0, "get_object sent a HEAD although it was given the object's info"
    assert len(proxy.received(heads)) >= 1


# ---------------------------------------------------------------------- 4. lazy listing


def test_list_objects_requests_each_page_when_the_iteration_reaches_it(s3, proxy):
    """list_objects pages are requested one at a time, as the iteration reaches them: a caller that
    stops early pays only for the pages it read."""
    keys = [f"p/{i}" for i in range(7)]
    put_objects(s3, keys, b"")
    client = S3Client(s3.region, endpoint=proxy.url)

    pages = client.list_objects(s3.bucket, "p/", max_keys=2)
    assert proxy.received(listings) == [], "listing started before the first page was asked for"
    listed, requests_per_page = [], []
    for page in pages:
        listed += [info.key for info in page.object_info]
        requests_per_page.append(len(proxy.received(listings)))

    assert listed == keys
    assert requests_per_page == [1, 2, 3, 4], "pages were requested before the iteration reached them"
    sent = proxy.received(listings)
    assert all(r.query.get("max-keys") == "2" for r in sent)
    assert all("continuation-token" in r.query for r in sent[1:])


def test_iterable_dataset_from_prefix_lists_one_page_ahead_of_its_reads(s3, proxy):
    """A prefix of millions of objects starts yielding after one ListObjectsV2 page (1000 keys), not
    after listing all of it; and the next page is asked for while this page's objects are read, so a
    worker does not sit through a round trip every 1,000 objects."""
    keys = dataset_keys(1001)  # two pages
    put_objects(s3, keys, b"")
    released = threading.Event()
    held = []  # whether the held second page was released (True) or gave up waiting (False)
    # The second page is held until the first sample is out: a dataset that waited for it to yield the
    # first sample would make it give up, after GATE_SECONDS.
    proxy.add(
        listings, forward(before=lambda _request: held.append(released.wait(GATE_SECONDS))), when=lambda n: n == 1
    )

    # Readers yielded without reading (prefetch=0 sends no GET): the listing alone is walked.
    samples = iter(S3IterableDataset.from_prefix(s3.uri("data/"), region=s3.region, endpoint=proxy.url, prefetch=0))
    first = next(samples)
    asked_ahead = proxy.wait_for(listings, 2, GATE_SECONDS)
    released.set()
    walked = [first.key] + [reader.key for reader in samples]

    assert asked_ahead, "the second page was not asked for while the first page's objects were read"
    assert held == [True], "the first sample waited for the second page"
    assert walked == keys
    assert len(proxy.received(listings)) == 2


def test_a_listing_error_comes_after_the_objects_of_the_pages_before_it(s3, proxy):
    """With the next page asked for ahead, an error answering it still surfaces where that page's
    objects would have come, after every object of the pages before it."""
    keys = dataset_keys(1001)
    put_objects(s3, keys, b"")
    proxy.add(listings, error(403, "AccessDenied"), when=lambda n: n >= 1)

    walked = []
    with pytest.raises(S3Exception, match="AccessDenied"):
        for reader in S3IterableDataset.from_prefix(s3.uri("data/"), region=s3.region, endpoint=proxy.url, prefetch=0):
            walked.append(reader.key)
    assert walked == keys[:1000]


def ranged_listings(r) -> bool:
    """The requests of a parallel listing's ranges after the first (they start after a key)."""
    return listings(r) and "start-after" in r.query


def test_a_parallel_listing_slows_down_on_503_and_lists_everything(s3, proxy):
    keys = dataset_keys(60)
    put_objects(s3, keys, b"")
    proxy.add(ranged_listings, error(503, "SlowDown"), when=lambda n: n % 3 == 0)  # a third answered 503 first
    client = S3Client(s3.region, endpoint=proxy.url)

    listed = [o.key for o in list_in_parallel(client, s3.bucket, "data/", concurrency=4, page_size=7)]

    assert listed == keys
    assert any(entry.status == 503 for entry in proxy.requests(ranged_listings)), "no range was answered 503"


def test_a_parallel_listing_raises_a_failed_range_where_its_objects_would_come(s3, proxy):
    keys = dataset_keys(60)
    put_objects(s3, keys, b"")
    proxy.add(ranged_listings, error(403, "AccessDenied"))
    client = S3Client(s3.region, endpoint=proxy.url)

    listed = []
    with pytest.raises(S3Exception, match="AccessDenied"):
        for info in list_in_parallel(client, s3.bucket, "data/", concurrency=4, page_size=7):
            listed.append(info.key)
    assert listed == keys[:7], "the first page's objects come before the error of the ranges after it"


def test_a_server_that_ignores_start_after_is_listed_page_by_page(s3, proxy, caplog):
    """A server that answers start-after with the first keys again would make ranges repeat forever:
    the listing notices (a key at or before start-after), says so, and goes page by page."""
    keys = dataset_keys(60)
    put_objects(s3, keys, b"")
    first_page = urllib.request.urlopen(f"{s3.endpoint}/{s3.bucket}?list-type=2&prefix=data/&max-keys=7").read()

    def as_if_start_after_were_not_sent(status, headers, body):
        return status, headers, first_page

    proxy.add(ranged_listings, rewrite(as_if_start_after_were_not_sent))
    client = S3Client(s3.region, endpoint=proxy.url)

    listed = [o.key for o in list_in_parallel(client, s3.bucket, "data/", concurrency=4, page_size=7)]

    assert listed == keys
    assert "start-after" in caplog.text


# ---------------------------------------------------------------------- 5. range reads in bounded memory


RANGE_READ_PEAK = """
    import json, sys
    from s3torchconnector._s3client import S3Client
    from s3torchconnector.s3reader import S3ReaderConstructor

    MIB = 1024 * 1024

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    def read_object(key, pieces):
        # To its end in 1 MiB reads; the reader and all it holds are gone when this returns.
        reader = client.get_object(bucket, key, reader_constructor=S3ReaderConstructor.range_based())
        total = 0
        while True:
            piece = reader.read(MIB)
            if not piece:
                reader.close()
                return total
            if total % (64 * MIB) == 0:
                pieces.append((total, piece[:16].hex()))
            total += len(piece)

    endpoint, bucket, warm_up_key, key = sys.argv[1:]
    client = S3Client("us-east-1", endpoint=endpoint)
    read_object(warm_up_key, [])  # the client's pools and the allocator's arenas reach their size
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) restarts from here
    baseline, pieces = status("VmRSS"), []
    total = read_object(key, pieces)
    print(json.dumps({"total": total, "growth": status("VmHWM") - baseline, "pieces": pieces}))
"""


def test_range_based_reader_reads_a_large_object_in_bounded_memory(proxy):
    """Sequential 1 MiB reads of a 256 MiB object through range_based() hold about one buffer
    (8 MiB) at a time: the peak resident memory of a fresh interpreter, warmed up on another
    object, grows by far less than the object. (The proxy makes both objects up: moto would copy
    the whole object for every ranged GET.)"""
    size = 256 * MIB
    proxy.add(lambda r: r.path == "/big/warm-up.bin", synthetic(32 * MIB))
    proxy.add(lambda r: r.path == "/big/object.bin", synthetic(size))

    result = run_python(RANGE_READ_PEAK, proxy.url, "big", "warm-up.bin", "object.bin", timeout=120)

    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["total"] == size
    expected = [[at, synthetic_bytes(at, at + 16).hex()] for at in range(0, size, 64 * MIB)]
    assert measured["pieces"] == expected, "the reads returned the wrong bytes"
    growth = measured["growth"]
    assert growth < 64 * MIB, f"peak RSS grew by {growth / MIB:.0f} MiB while reading a {size // MIB} MiB object"


def test_every_request_of_a_requester_pays_client_says_so(s3, proxy):
    """A requester-pays bucket refuses any request without x-amz-request-payer (403): the parts of uploads and
    copies, and DCP's rename (a copy and a delete), must carry it as the first request does."""
    from s3torchconnector.dcp.s3_file_system import S3FileSystem

    client = client_via(proxy, s3, requester_pays=True)
    data = bytes(range(256)) * (2 * PART // 256 + 1)  # three parts
    with client.put_object(s3.bucket, "big") as writer:
        writer.write(data)
    with client.put_object(s3.bucket, "small") as writer:
        writer.write(b"small")
    assert client.get_object(s3.bucket, "big").read() == data
    assert client.head_object(s3.bucket, "small").size == 5
    assert [info.key for page in client.list_objects(s3.bucket) for info in page.object_info] == ["big", "small"]
    client.copy_object(s3.bucket, "small", s3.bucket, "copied")
    client.delete_object(s3.bucket, "copied")
    S3FileSystem(s3.region, client).rename(s3.uri("small"), s3.uri("renamed"))
    assert s3.get("renamed") == b"small" and "small" not in s3.keys()
    methods = {(entry.request.method, tuple(sorted(entry.request.query))) for entry in proxy.requests()}
    assert ("POST", ("uploads",)) in methods and ("PUT", ("partNumber", "uploadId")) in methods  # the parts
    without = [
        entry.request for entry in proxy.requests() if entry.request.headers.get("x-amz-request-payer") != "requester"
    ]
    assert without == []
