"""A tar shard's samples (_tar.samples.tar_samples) on bytes built in memory: the errors a dataset
raises for a shard that cannot be split into samples name the shard, the member and the byte
offset. The tar parser underneath: test_tar_reader.py; tar shards over HTTP:
tests/e2e/test_tar_shards.py."""

import io
import tarfile

import pytest
from samples import tar_of

from s3torchconnector._tar.samples import tar_samples


def test_a_second_member_of_the_same_kind_in_a_sample_is_named():
    """tar_samples: two members that would fill one sample field is an error naming the shard, the
    member, the field, the sample and the byte offset."""
    shard = io.BytesIO(tar_of([(name, b"x") for name in ("s/0001.txt", "s/0001.cls", "s/0001.TXT")]))
    with pytest.raises(ValueError) as raised:
        list(tar_samples(shard, "s3://b/shard.tar"))
    assert str(raised.value) == (
        "s3://b/shard.tar: s/0001.TXT is a second 'txt' member of the sample 's/0001' (at byte 2048)"
    )


def _two_member_shard() -> bytes:
    return tar_of([("a/0001.txt", b"abc"), ("a/0002.txt", b"abc")], format=tarfile.USTAR_FORMAT)


def test_a_shard_cut_short_or_damaged_between_members_says_which():
    """_StrictTarInfo.frombuf: a header cut short and a header that fails its checksum are told apart."""
    whole = _two_member_shard()
    with pytest.raises(ValueError, match=r"it ends where a member's header should be: truncated \(at byte"):
        list(tar_samples(io.BytesIO(whole[: 1024 + 100]), "s3://b/cut.tar"))
    damaged = bytearray(whole)
    damaged[1024 + 148 : 1024 + 156] = b"99999999"  # the second header's checksum field
    with pytest.raises(ValueError, match=r"a damaged member header \(invalid header\) \(at byte 1024\)"):
        list(tar_samples(io.BytesIO(bytes(damaged)), "s3://b/damaged.tar"))
