"""S3Reader against the local S3 server: every strategy behaves like a file over the object's bytes.

Random sequences of read/read1/readinto/readinto1/seek/tell are compared with an io.BytesIO model
whose seeks clamp to the object's size (as the product promises)."""

import io
import random
import uuid

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reader_model import ClampedBytesIO, apply_operation

from s3torchconnector import S3ClientConfig, S3Exception, S3Reader, S3ReaderConstructor
from s3torchconnector._s3client import S3Client

MIB = 1024 * 1024
REGION = "us-east-1"
SIZES = {"empty": 0, "one": 1, "small": 1000, "multipart": 6 * MIB + 12345}

CONSTRUCTORS = {
    "sequential": S3ReaderConstructor.sequential,
    "range_based": S3ReaderConstructor.range_based,
    "range_based_0": lambda: S3ReaderConstructor.range_based(buffer_size=0),
    "range_based_1000": lambda: S3ReaderConstructor.range_based(buffer_size=1000),
}


class Objects:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.bucket = f"readers-{uuid.uuid4().hex[:16]}"
        self.boto3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        self.boto3.create_bucket(Bucket=self.bucket)
        rng = random.Random(1234)
        self.data = {}
        for name, size in SIZES.items():
            body = rng.randbytes(size)
            self.boto3.put_object(Bucket=self.bucket, Key=f"obj/{name}", Body=body)
            self.data[name] = body
        self.client = S3Client(REGION, endpoint=endpoint, s3client_config=S3ClientConfig(part_size=5 * MIB))
        self.infos = {
            info.key.split("/", 1)[1]: info
            for page in self.client.list_objects(self.bucket, "obj/")
            for info in page.object_info
        }

    def reader(self, name, constructor, with_info=False) -> S3Reader:
        return self.client.get_object(
            self.bucket,
            f"obj/{name}",
            object_info=self.infos[name] if with_info else None,
            reader_constructor=constructor,
        )


@pytest.fixture(scope="module")
def objects(s3_endpoint):
    return Objects(s3_endpoint)


def _operation(size):
    """Operations whose sizes and offsets are around the object's size."""
    n = st.one_of(st.integers(0, 1100), st.integers(0, size + 1100))
    offset = st.one_of(st.integers(-1100, 1100), st.integers(-size - 1100, size + 1100))
    return st.one_of(
        st.tuples(st.just("read"), st.one_of(n, st.just(-1), st.none())),
        st.tuples(st.just("read()")),
        st.tuples(st.just("read1"), st.one_of(n, st.just(-1))),
        st.tuples(st.just("readinto"), n),
        st.tuples(st.just("readinto1"), n),
        st.tuples(st.just("seek"), offset, st.sampled_from([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END])),
        st.tuples(st.just("tell")),
    )


@pytest.mark.parametrize("size_name", list(SIZES))
@pytest.mark.parametrize("constructor_name", list(CONSTRUCTORS))
@given(data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_reader_matches_bytesio_model(objects, constructor_name, size_name, data):
    body = objects.data[size_name]
    with_info = data.draw(st.booleans(), label="object_info from list_objects")
    ops = data.draw(st.lists(_operation(len(body)), max_size=12), label="operations")
    model = ClampedBytesIO(body)
    reader = objects.reader(size_name, CONSTRUCTORS[constructor_name](), with_info)
    for op in ops:
        try:
            expected = apply_operation(model, op)
        except ValueError:
            with pytest.raises(ValueError):
                apply_operation(reader, op)
        else:
            actual = apply_operation(reader, op)
            assert actual == expected, f"{op} differs"
        assert reader.tell() == model.tell(), f"position after {op}"
    assert reader.read() == model.read()
    assert reader.read() == b""


@pytest.mark.parametrize("with_info", [False, True])
@pytest.mark.parametrize("constructor_name", list(CONSTRUCTORS))
def test_reader_basic_file_behaviour(objects, constructor_name, with_info):
    body = objects.data["small"]
    reader = objects.reader("small", CONSTRUCTORS[constructor_name](), with_info)
    assert isinstance(reader, io.BufferedIOBase)
    assert reader.bucket == objects.bucket
    assert reader.key == "obj/small"
    assert reader.readable() and reader.seekable() and not reader.closed
    assert reader.tell() == 0
    assert reader.read(10) == body[:10]
    assert reader.seek(-10, io.SEEK_END) == 990
    assert reader.read(None) == body[990:]
    assert reader.read() == b"" and reader.read(5) == b""  # past the end
    assert reader.seek(5000) == 1000  # clamped to the size
    assert reader.read() == b""
    assert reader.seek(10, io.SEEK_CUR) == 1000
    with pytest.raises(ValueError):
        reader.seek(-1)
    with pytest.raises(ValueError):
        reader.seek(-1001, io.SEEK_CUR)
    with pytest.raises(ValueError):
        reader.seek(-1001, io.SEEK_END)
    assert reader.tell() == 1000  # a refused seek does not move
    assert reader.seek(0) == 0
    buf = bytearray(1500)
    assert reader.readinto(buf) == 1000
    assert bytes(buf[:1000]) == body
    reader.close()
    assert reader.closed
    with pytest.raises(ValueError):
        reader.read()


@pytest.mark.parametrize("constructor_name", list(CONSTRUCTORS))
def test_reader_whole_multipart_object(objects, constructor_name):
    with objects.reader("multipart", CONSTRUCTORS[constructor_name]()) as reader:
        assert reader.read() == objects.data["multipart"]
    assert reader.closed


@pytest.mark.parametrize("constructor_name", list(CONSTRUCTORS))
def test_reader_missing_object_raises_no_such_key_at_first_read(objects, constructor_name):
    reader = objects.client.get_object(
        objects.bucket, "obj/missing", reader_constructor=CONSTRUCTORS[constructor_name]()
    )
    with pytest.raises(S3Exception) as raised:
        reader.read()
    assert raised.value.code == "NoSuchKey"
    assert f"s3://{objects.bucket}/obj/missing" in str(raised.value)


@pytest.mark.parametrize("constructor_name", ["sequential", "range_based", "range_based_0"])
def test_reader_lines_and_text_wrapper(s3, constructor_name):
    s3.put("text/lines.txt", "one\ntwo\nthrée".encode())
    client = S3Client(s3.region, endpoint=s3.endpoint)

    def reader():
        return client.get_object(s3.bucket, "text/lines.txt", reader_constructor=CONSTRUCTORS[constructor_name]())

    assert list(io.TextIOWrapper(reader(), encoding="utf-8")) == ["one\n", "two\n", "thrée"]
    assert reader().readlines() == [b"one\n", b"two\n", "thrée".encode()]
    r = reader()
    assert r.readline() == b"one\n" and r.tell() == 4
    assert r.read1(2) == b"tw" and r.tell() == 6


SPECIAL_KEYS = ["dir/a b+c?d#e%f.bin", "unicodé/ключ 😀.bin", "x/~!@$&'()*,;=:.bin", "y//double.bin", "z/tail/"]


@pytest.mark.parametrize("constructor_name", ["sequential", "range_based"])
def test_reader_keys_with_special_characters(s3, constructor_name):
    client = S3Client(s3.region, endpoint=s3.endpoint)
    for key in SPECIAL_KEYS:
        s3.put(key, key.encode() * 3)
    for key in SPECIAL_KEYS:
        reader = client.get_object(s3.bucket, key, reader_constructor=CONSTRUCTORS[constructor_name]())
        assert reader.key == key
        assert reader.seek(0, io.SEEK_END) == len(key.encode()) * 3
        assert reader.seek(0) == 0
        assert reader.read() == key.encode() * 3


def test_one_client_shared_by_threads(s3):
    from concurrent.futures import ThreadPoolExecutor

    objects = {f"threads/{i:02d}": random.Random(i).randbytes(3000 + i) for i in range(24)}
    for key, body in objects.items():
        s3.put(key, body)
    client = S3Client(s3.region, endpoint=s3.endpoint)
    constructors = [S3ReaderConstructor.sequential(), S3ReaderConstructor.range_based(buffer_size=1000)]

    def read(item):
        index, key = item
        return key, client.get_object(s3.bucket, key, reader_constructor=constructors[index % 2]).read()

    with ThreadPoolExecutor(8) as pool:
        assert dict(pool.map(read, enumerate(objects))) == objects


def test_sequential_reader_missing_bucket_raises_no_such_bucket_at_first_read(s3):
    # A whole-object GET's error response names the missing bucket (unlike a body-less HEAD 404).
    client = S3Client(s3.region, endpoint=s3.endpoint)
    reader = client.get_object(f"{s3.bucket}-missing", "key", reader_constructor=S3ReaderConstructor.sequential())
    with pytest.raises(S3Exception) as raised:
        reader.read()
    assert raised.value.code == "NoSuchBucket"
