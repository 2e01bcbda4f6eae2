"""S3Client's operations against rclone's `serve s3`: every byte compared with what boto3 wrote or reads."""

import pytest
from samples import payload

from s3torchconnector import NoSuchBucketError, NoSuchKeyError, ObjectChangedError, S3Exception, S3ReaderConstructor
from s3torchconnector._s3client import S3Client, S3ClientConfig

MIB = 1024 * 1024
PART = 5 * MIB
SIZE = 9 * MIB + 321  # several 4 MiB parts of a whole-object read, the last one short

READERS = {"sequential": S3ReaderConstructor.sequential(), "range_based": S3ReaderConstructor.range_based()}


def client(s3, part_size: int = PART) -> S3Client:
    return S3Client(s3.region, endpoint=s3.endpoint, s3client_config=S3ClientConfig(part_size=part_size))


# ---------------------------------------------------------------- reads of what boto3 wrote


@pytest.mark.parametrize("reader", READERS)
def test_get_object_reads_the_whole_object(s3, reader):
    data = payload(SIZE, seed=1)
    s3.put("obj", data)
    stream = client(s3).get_object(s3.bucket, "obj", reader_constructor=READERS[reader])
    assert (stream.bucket, stream.key) == (s3.bucket, "obj")
    assert stream.read() == data
    assert stream.tell() == SIZE
    assert stream.read() == b""


@pytest.mark.parametrize("reader", READERS)
def test_get_object_reads_in_pieces_and_seeks(s3, reader):
    data = payload(SIZE, seed=2)
    s3.put("obj", data)
    stream = client(s3).get_object(s3.bucket, "obj", reader_constructor=READERS[reader])
    assert stream.read(10) == data[:10]
    assert stream.tell() == 10
    assert stream.read(4 * MIB) == data[10 : 4 * MIB + 10]  # across the first part's end
    assert stream.seek(PART - 3) == PART - 3
    assert stream.read(6) == data[PART - 3 : PART + 3]
    assert stream.seek(-100, 2) == SIZE - 100  # from the end
    assert stream.read() == data[-100:]
    assert stream.seek(7) == 7  # back to the start
    buffer = bytearray(1000)
    assert stream.readinto(buffer) == 1000 and bytes(buffer) == data[7:1007]
    assert stream.seek(5, 1) == 1012  # from where it stands
    assert stream.read(3) == data[1012:1015]
    assert stream.seek(SIZE + 10) == SIZE  # past the end: clamped to the size, as the original's readers do
    assert stream.read(5) == b""


@pytest.mark.parametrize("reader", READERS)
def test_empty_object_reads_as_no_bytes(s3, reader):
    s3.put("empty", b"")
    stream = client(s3).get_object(s3.bucket, "empty", reader_constructor=READERS[reader])
    assert stream.read() == b""
    assert stream.read(10) == b""
    assert stream.tell() == 0
    assert client(s3).head_object(s3.bucket, "empty").size == 0


def test_head_object_reports_what_boto3_sees(s3):
    data = payload(1234, seed=3)
    s3.put("dir/obj", data)
    head = client(s3).head_object(s3.bucket, "dir/obj")
    expected = s3.boto3.head_object(Bucket=s3.bucket, Key="dir/obj")
    assert head.size == 1234 == expected["ContentLength"]
    assert head.etag == expected["ETag"]
    assert head.last_modified == int(expected["LastModified"].timestamp())


def test_list_objects_pages_follow_the_continuation(s3):
    objects = {f"list/{i:02d}.bin": payload(i + 1, seed=i) for i in range(7)}
    for key, body in objects.items():
        s3.put(key, body)
    s3.put("elsewhere/x", b"not under the prefix")
    pages = list(client(s3).list_objects(s3.bucket, "list/", max_keys=3))
    assert [len(page.object_info) for page in pages] == [3, 3, 1]
    listed = [info for page in pages for info in page.object_info]
    assert [info.key for info in listed] == sorted(objects)
    assert [info.size for info in listed] == [len(objects[key]) for key in sorted(objects)]
    boto3_listing = s3.boto3.list_objects_v2(Bucket=s3.bucket, Prefix="list/")["Contents"]
    # the same ETag, whether or not the server quotes it in listings (rclone does not)
    assert [info.etag.strip('"') for info in listed] == [item["ETag"].strip('"') for item in boto3_listing]


def test_list_objects_with_a_delimiter_gives_common_prefixes(s3):
    for key in ["top.bin", "a/1.bin", "a/2.bin", "b/c/3.bin"]:
        s3.put(key, key.encode())
    pages = list(client(s3).list_objects(s3.bucket, "", delimiter="/"))
    assert [info.key for page in pages for info in page.object_info] == ["top.bin"]
    assert sorted(prefix for page in pages for prefix in page.common_prefixes) == ["a/", "b/"]
    pages = list(client(s3).list_objects(s3.bucket, "b/", delimiter="/"))
    assert [prefix for page in pages for prefix in page.common_prefixes] == ["b/c/"]


# ---------------------------------------------------------------- writes that boto3 reads back


def test_put_object_small(s3):
    data = payload(100_000, seed=4)
    with client(s3).put_object(s3.bucket, "small") as writer:
        for start in range(0, len(data), 30_000):
            writer.write(data[start : start + 30_000])
        assert writer.tell() == len(data)
    assert s3.get("small") == data
    assert s3.keys() == ["small"]
    assert client(s3).head_object(s3.bucket, "small").size == len(data)


def test_put_object_larger_than_one_part_is_a_multipart_upload(s3):
    data = payload(12 * MIB, seed=5)
    uploader = client(s3)
    with uploader.put_object(s3.bucket, "large") as writer:
        for start in range(0, len(data), 3 * MIB + 7):
            writer.write(data[start : start + 3 * MIB + 7])
    # CreateMultipartUpload, three parts and CompleteMultipartUpload (one PUT would be one request)
    assert uploader.metrics()["operations"]["PutObject"]["requests"] >= 5
    assert s3.get("large") == data
    assert s3.keys() == ["large"]
    assert [name for name in s3.files() if ".rclone_temp_" in name] == []


def test_put_object_of_nothing_makes_an_empty_object(s3):
    with client(s3).put_object(s3.bucket, "empty"):
        pass
    assert s3.get("empty") == b""
    assert s3.keys() == ["empty"]


def test_put_object_overwrites(s3):
    s3.put("obj", b"the first version, which is longer")
    with client(s3).put_object(s3.bucket, "obj") as writer:
        writer.write(b"second")
    assert s3.get("obj") == b"second"
    assert client(s3).get_object(s3.bucket, "obj").read() == b"second"


class Boom(Exception):
    pass


@pytest.mark.parametrize("size", [1000, 7 * MIB], ids=["small", "multipart"])
def test_an_aborted_upload_leaves_nothing(s3, size):
    s3.put("kept", b"an object already there")
    writer = client(s3).put_object(s3.bucket, "aborted")
    with pytest.raises(Boom):
        with writer:
            writer.write(payload(size, seed=6))
            raise Boom()
    assert writer.closed
    assert s3.keys() == ["kept"]
    assert s3.files() == ["kept"]  # no temporary upload left behind on disk either


def test_copy_object(s3):
    data = payload(300_000, seed=7)
    s3.put("src/obj", data)
    client(s3).copy_object(s3.bucket, "src/obj", s3.bucket, "dst/copy")
    assert s3.get("dst/copy") == data
    assert s3.get("src/obj") == data
    assert s3.keys() == ["dst/copy", "src/obj"]


def test_delete_object(s3):
    s3.put("a/doomed", b"x")
    s3.put("a/kept", b"y")
    client(s3).delete_object(s3.bucket, "a/doomed")
    assert s3.keys() == ["a/kept"]
    with pytest.raises(NoSuchKeyError):
        client(s3).get_object(s3.bucket, "a/doomed").read()
    client(s3).delete_object(s3.bucket, "a/doomed")  # deleting what is not there is no error, as on S3


# ---------------------------------------------------------------- errors users act on


def test_missing_key_and_bucket_raise_their_s3_errors(s3):
    c = client(s3)
    with pytest.raises(NoSuchKeyError) as missing:
        c.get_object(s3.bucket, "not/there").read()
    assert (missing.value.code, missing.value.status) == ("NoSuchKey", 404)
    assert s3.uri("not/there") in str(missing.value)
    with pytest.raises(NoSuchKeyError):
        c.head_object(s3.bucket, "not/there")
    bucket = f"{s3.bucket}-missing"
    with pytest.raises(NoSuchBucketError) as missing:
        list(c.list_objects(bucket))
    assert (missing.value.code, missing.value.status) == ("NoSuchBucket", 404)
    with pytest.raises(NoSuchBucketError):
        with c.put_object(bucket, "k") as writer:
            writer.write(b"1")
    with pytest.raises(NoSuchKeyError):
        c.copy_object(s3.bucket, "not/there", s3.bucket, "copy")


def test_an_object_overwritten_while_read_fails_the_read(both_s3):
    """A reader never splices two versions. moto answers the later ranged GET's If-Match with 412;
    rclone ignores If-Match and sends the new version, which the client refuses by its ETag."""
    s3 = both_s3
    first, second = payload(SIZE, seed=8), payload(SIZE, seed=9)
    s3.put("obj", first)
    stream = client(s3).get_object(s3.bucket, "obj", reader_constructor=S3ReaderConstructor.range_based())
    assert stream.read(10) == first[:10]
    s3.put("obj", second)
    stream.seek(SIZE - 10)
    with pytest.raises(ObjectChangedError) as changed:
        stream.read(10)
    assert isinstance(changed.value, S3Exception)
    assert s3.uri("obj") in str(changed.value)
