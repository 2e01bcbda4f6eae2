"""What HEAD and LIST tell about an object (ObjectInfo, HeadObjectResult, RestoreStatus): their
fields, their reprs, the x-amz-restore header read, and last_modified from either date format.
No server."""

from s3torchconnector._s3client.object_info import (
    HeadObjectResult,
    ObjectInfo,
    RestoreStatus,
    restore_status_from_header,
)


def test_restore_status_keeps_what_it_is_given():
    """RestoreStatus.__init__: both fields, and no expiry unless given."""
    done = RestoreStatus(False, 1_700_000_000)
    assert (done.in_progress, done.expiry) == (False, 1_700_000_000)
    running = RestoreStatus(True)
    assert (running.in_progress, running.expiry) == (True, None)
    assert repr(done) == "RestoreStatus(in_progress=False, expiry=1700000000)"


def test_restore_status_is_read_from_the_x_amz_restore_header():
    """restore_status_from_header: S3's two forms, and None for an object never restored."""
    assert restore_status_from_header("") is None
    running = restore_status_from_header('ongoing-request="true"')
    assert (running.in_progress, running.expiry) == (True, None)
    done = restore_status_from_header('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"')
    assert (done.in_progress, done.expiry) == (False, 1356048000)


def test_head_object_result_repr_names_its_etag_and_size():
    """HeadObjectResult.__repr__ (ObjectInfo's own repr adds the key)."""
    assert repr(HeadObjectResult('"e1"', 12)) == "HeadObjectResult(etag='\"e1\"', size=12)"
    assert repr(ObjectInfo("a/b", '"e1"', 12)) == "ObjectInfo(key='a/b', etag='\"e1\"', size=12)"


def test_last_modified_of_both_formats_and_of_none():
    """_epoch_seconds: ISO 8601 (listings) and RFC 1123 (HEAD) give the same second; no timestamp,
    or one that does not parse, gives 0 (the original's value for "unknown")."""
    assert ObjectInfo("k", '"e"', 1, "2026-11-23T23:14:27.000Z").last_modified == 1795475667
    assert HeadObjectResult('"e"', 1, "Mon, 23 Nov 2026 23:14:27 GMT").last_modified == 1795475667
    assert HeadObjectResult('"e"', 1).last_modified == 0
    assert HeadObjectResult('"e"', 1, "not a date").last_modified == 0
