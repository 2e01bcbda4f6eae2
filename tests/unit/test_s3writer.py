"""S3Writer without a server (on the in-memory MockS3Client): its file surface, its refusals and
what their messages say, and a writer dropped unclosed cancelling its upload. Writing and
checkpoints over HTTP: tests/e2e/test_writer_checkpoint.py."""

import pytest
from mock_clients import mock_client_with_objects

from s3torchconnector._s3client import MockS3Client

REGION = "us-east-1"
BUCKET = "test-bucket"


@pytest.fixture
def client() -> MockS3Client:
    return mock_client_with_objects(REGION, BUCKET)


class _Upload:
    """An upload stream that only counts what happens to it."""

    def __init__(self):
        self.data, self.closed = b"", False

    def write(self, data):
        self.data += bytes(data)
        return len(data)

    def close(self):
        self.closed = True

    def abort(self):
        pass


def test_the_writers_file_surface(client):
    """S3Writer: writable until closed, never readable or seekable, and `closed` a bool."""
    writer = client.put_object(BUCKET, "surface")
    assert (writer.writable(), writer.readable(), writer.seekable(), writer.closed) == (True, False, False, False)
    writer.close()
    assert (writer.writable(), writer.closed) == (False, True)


def test_a_write_after_close_names_the_object_or_the_upload(client):
    """S3Writer._describe: the error names s3://bucket/key when the writer knows them, else "upload"."""
    writer = client.put_object(BUCKET, "out/model.pt")
    writer.write(b"abc")
    writer.close()
    with pytest.raises(ValueError, match=r"^write to a closed S3Writer \(s3://test-bucket/out/model\.pt\)$"):
        writer.write(b"more")

    from s3torchconnector import S3Writer

    anonymous = S3Writer(_Upload())
    anonymous.close()
    with pytest.raises(ValueError, match=r"^write to a closed S3Writer \(upload\)$"):
        anonymous.write(b"more")


def test_the_writers_refusals_say_what_to_do(client):
    """S3Writer.write: a str and a non-contiguous buffer are refused with messages that say why."""
    import numpy

    writer = client.put_object(BUCKET, "refusals")
    with pytest.raises(TypeError) as raised:
        writer.write("text")
    assert str(raised.value) == "S3Writer.write takes bytes-like objects, not str; encode it first"
    with pytest.raises(ValueError, match=r"^S3Writer\.write needs a contiguous buffer: "):
        writer.write(memoryview(numpy.arange(10, dtype=numpy.uint8))[::2])
    writer.abort()


def test_dropping_a_writer_cancels_its_upload_even_if_its_stream_lives_on(client):
    """S3Writer.__del__: a writer dropped unclosed aborts its upload, so a stream someone still holds
    (the writer's public `stream`) cannot complete it afterwards."""
    import gc

    writer = client.put_object(BUCKET, "dropped")
    writer.write(b"half")
    stream = writer.stream
    del writer
    gc.collect()
    try:
        stream.close()
    except Exception:
        pass
    assert "dropped" not in [info.key for page in client.list_objects(BUCKET) for info in page.object_info]
