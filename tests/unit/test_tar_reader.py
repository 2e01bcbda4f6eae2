"""The tar parser under tar shards (_tar.reader.regular_files), on bytes built in memory with tarfile
(and by hand where tarfile writes no such thing): each regular file's name, first header offset and
bytes, in order, for ustar, GNU and pax tars, plain or compressed, from a stream that cannot seek;
every other member skipped; and every tar that cannot be read whole (cut short, damaged, garbage,
a sparse member) refused with BrokenTar and the offset where it broke, never ended quietly.
How datasets read tar shards over HTTP: tests/e2e/test_tar_shards.py."""

import bz2
import gzip
import io
import lzma
import tarfile

import pytest
from samples import patched_header, payload, tar_member, tar_of

from s3torchconnector._tar.reader import BrokenTar, regular_files

END = bytes(1024)  # the two zero blocks that end a tar
LONG = "deep/" + "d" * 120 + "/0001.jpg"  # more than a ustar name field: split, or a long-name header
FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


def read(data: bytes) -> list:
    """(name, offset, bytes) of each regular file of the tar ``data``."""
    return [(member.name, member.offset, member.read()) for member in regular_files(io.BytesIO(data))]


def broken(data: bytes):
    """The BrokenTar that reading all of ``data`` raises, and the files read before it."""
    files = []
    with pytest.raises(BrokenTar) as raised:
        for member in regular_files(io.BytesIO(data)):
            files.append((member.name, member.read()))
    return raised.value, files


class Trickle(io.RawIOBase):
    """An unseekable stream (as an S3 GET is) that gives at most 100 bytes a read."""

    def __init__(self, data: bytes):
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), len(self._data), 100)
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


# ---------------------------------------------------------------- what it reads


@pytest.mark.parametrize("tar_format", FORMATS)
def test_each_format_gives_every_file_its_name_offset_and_bytes_in_order(tar_format):
    """A long name comes whole (ustar: from its prefix field; GNU and pax: from the long-name or pax
    header), an empty file is a file, and a member's offset is its first header block's."""
    data = tar_of([("a/0001.txt", b"one"), (LONG, b"two" * 200), ("a/empty.txt", b"")], format=FORMATS[tar_format])
    # ustar: three members of a header and data; GNU and pax: the long name takes two blocks more.
    third = 3 * 512 if tar_format == "ustar" else 5 * 512
    assert read(data) == [("a/0001.txt", 0, b"one"), (LONG, 1024, b"two" * 200), ("a/empty.txt", 1024 + third, b"")]


@pytest.mark.parametrize("tar_format", FORMATS)
def test_a_member_ends_after_its_padded_data_and_a_range_reads_alone(tar_format):
    """``end`` is where tarfile's next header could start; the bytes of a run of members, read alone
    from their first offset (``start``), give the same members at the same offsets, and errors there
    name offsets in the whole tar."""
    data = tar_of([("a/1.txt", b"x" * 513), (LONG, b""), ("a/3.txt", b"y" * 512)], format=FORMATS[tar_format])
    members = list(regular_files(io.BytesIO(data)))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        ends = [info.offset_data + -(-info.size // 512) * 512 for info in tar]
    assert [member.end for member in members] == ends
    start, end = members[1].offset, members[2].end
    alone = list(regular_files(io.BytesIO(data[start:end] + END), start=start))
    assert [(m.name, m.offset, m.end, m.read()) for m in alone] == [
        (m.name, m.offset, m.end, m.read()) for m in members[1:]
    ]
    damaged = bytearray(data[start:end] + END)
    damaged[members[2].offset - start] ^= 1  # a byte of the last member's first header: its checksum fails
    with pytest.raises(BrokenTar) as raised:
        for member in regular_files(io.BytesIO(bytes(damaged)), start=start):
            member.read()
    assert raised.value.offset == members[2].offset  # counted in the whole tar, not in the range


@pytest.mark.parametrize("tar_format", ["gnu", "pax"])
def test_names_no_ustar_header_holds_come_whole(tar_format):
    """A name longer than ustar's prefix and name fields together, with no '/' to split it at, and a
    non-ASCII name: what tarfile wrote."""
    names = ["n" * 300 + ".txt", "\u00e9t\u00e9/0002.jpg", "x" * 99 + ".z"]
    data = tar_of([(name, name.encode()) for name in names], format=FORMATS[tar_format])
    assert [(name, content) for name, _, content in read(data)] == [(name, name.encode()) for name in names]


def test_members_that_are_not_regular_files_are_skipped():
    """Directories, links (one with a GNU long link-name header), devices and FIFOs have no bytes to
    read, whatever their size field says; a type tarfile does not know has its bytes skipped. The
    files around them keep their own bytes: what tarfile reads."""
    others = b""
    for kind, name in [
        (tarfile.DIRTYPE, "a/dir"),
        (tarfile.SYMTYPE, "a/symlink"),
        (tarfile.LNKTYPE, "a/hardlink"),
        (tarfile.CHRTYPE, "a/chr"),
        (tarfile.BLKTYPE, "a/blk"),
        (tarfile.FIFOTYPE, "a/fifo"),
    ]:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "a/target/" + "l" * 120 if kind == tarfile.SYMTYPE else "a/first.txt"
        headers = info.tobuf(tarfile.GNU_FORMAT)
        others += headers[:-512] + patched_header(headers[-512:], 124, b"%011o\0" % 700)  # no 700 bytes follow
    unknown = tar_member("a/unknown.bin", b"not a file's bytes" * 40)
    others += patched_header(unknown[:512], 156, b"Z") + unknown[512:]  # a type no tar defines
    data = tar_member("a/first.txt", b"first") + others + tar_member("a/last.txt", b"last") + END
    expected = [("a/first.txt", b"first"), ("a/last.txt", b"last")]
    assert [(name, content) for name, _, content in read(data)] == expected
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        assert [(info.name, tar.extractfile(info).read()) for info in tar if info.isreg()] == expected


@pytest.mark.parametrize("kind", [b"\0", b"7"])
def test_old_style_and_contiguous_files_are_regular_files(kind):
    """Type '\\0' (pre-POSIX tars) and '7' (contiguous) are read as files, as tarfile reads them."""
    member = tar_member("old/0001.txt", b"old bytes")
    data = patched_header(member[:512], 156, kind) + member[512:] + END
    assert read(data) == [("old/0001.txt", 0, b"old bytes")]


def test_a_pax_size_overrides_the_headers_and_a_gnu_base_256_size_is_read():
    """pax records the size of a file of 8 GiB or more, whose ustar size field cannot; GNU tar
    writes it in base-256 instead. Both are read; the header's octal size is not used then."""
    pax = tar_member("p/1.txt", b"12345", pax_headers={"size": "5"})
    pax = pax[:1024] + patched_header(pax[1024:1536], 124, b"00000000001\0") + pax[1536:]  # the header says 1
    gnu = tar_member("p/2.txt", b"678")
    gnu = patched_header(gnu[:512], 124, b"\x80" + (3).to_bytes(11, "big")) + gnu[512:]
    assert read(pax + gnu + END) == [("p/1.txt", 0, b"12345"), ("p/2.txt", 2048, b"678")]


def test_a_global_pax_header_is_read_past():
    """A pax global header (tarfile writes one for pax_headers=) holds no file: the files after it
    come with their own names and bytes, the second at its own header."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "c"}) as tar:
        for name, content in [("g/1.txt", b"one"), ("g/2.txt", b"two")]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    files = read(buffer.getvalue())
    assert [(name, content) for name, _, content in files] == [("g/1.txt", b"one"), ("g/2.txt", b"two")]
    assert files[1][1] == 2048  # past the global header's two blocks and the first file's two


def test_a_checksum_of_signed_bytes_is_accepted():
    """Some old tars summed the header's bytes as signed: a header with bytes of 128 or more and such a
    checksum reads as tarfile reads it."""
    member = tar_member("p/2.txt", b"signed")
    member = patched_header(member[:512], 0, "p/2\u00e9.txt".encode() + b"\0", signed_checksum=True) + member[512:]
    assert read(member + END) == [("p/2\u00e9.txt", 0, b"signed")]


def test_a_name_that_is_not_utf8_is_kept_byte_for_byte():
    """A ustar name in another encoding: its bytes come back through surrogateescape, not an error."""
    member = tar_member("x", b"latin-1")
    member = patched_header(member[:512], 0, b"caf\xe9.txt\0") + member[512:]
    ((name, _, data),) = read(member + END)
    assert name == "caf\udce9.txt" and name.encode("utf-8", "surrogateescape") == b"caf\xe9.txt"
    assert data == b"latin-1"


def test_one_zero_block_ends_the_tar_and_what_follows_it_is_not_read():
    """The first zero block is the end (tarfile writes two and pads to 10 KiB records; other writers
    write one): nothing after it is read, so it may be anything."""
    members = tar_member("a.txt", b"a") + tar_member("b.txt", b"b")
    assert read(members + bytes(512)) == read(members + bytes(512) + b"not a header" * 100)
    assert [name for name, _, _ in read(members + bytes(512))] == ["a.txt", "b.txt"]


def test_a_files_bytes_read_late_or_twice_are_its_own():
    """Bytes not read before the next member is asked for are kept for it (and skipped in the stream),
    and a second read() gives the same bytes: the next member's are never taken."""
    data = tar_of([("a/1.txt", b"first" * 300), ("a/2.txt", b"second"), ("a/3.txt", b"third")])
    members = list(regular_files(io.BytesIO(data)))
    assert [member.name for member in members] == ["a/1.txt", "a/2.txt", "a/3.txt"]
    assert [member.read() for member in members] == [b"first" * 300, b"second", b"third"]
    assert members[1].read() == b"second"


COMPRESSIONS = {
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
}


@pytest.mark.parametrize("unseekable", [False, True], ids=["bytes", "unseekable"])
@pytest.mark.parametrize("compression", ["none", *COMPRESSIONS])
def test_a_compressed_tar_is_recognised_by_its_first_bytes(compression, unseekable):
    """gzip, bzip2, xz and lzma, as tarfile's r|* recognises them (whatever the object's name), read
    to the same files at the same offsets (of the uncompressed tar), also from a stream that cannot
    seek and gives few bytes a read."""
    plain = tar_of([("c/1.txt", b"one" * 1000), (LONG, b"two"), ("c/3.txt", b"")], format=tarfile.PAX_FORMAT)
    data = COMPRESSIONS[compression](plain) if compression != "none" else plain
    assert data[:2] != plain[:2] or compression == "none"
    source = Trickle(data) if unseekable else io.BytesIO(data)
    got = [(member.name, member.offset, member.read()) for member in regular_files(source)]
    assert got == [("c/1.txt", 0, b"one" * 1000), (LONG, 3584, b"two"), ("c/3.txt", 5632, b"")]


# ---------------------------------------------------------------- what it refuses


def test_a_tar_cut_short_is_refused_where_it_was_cut():
    """Each cut: between members (where tarfile's stream mode would end quietly), inside a header,
    inside a member's bytes or their padding, before the end blocks, or nothing at all. The files
    wholly before the cut are given first."""
    data = tar_of([("a/1.txt", b"one"), ("a/2.txt", b"two")], format=tarfile.USTAR_FORMAT)
    cuts = {
        0: (0, "it ends where a member's header should be: truncated", []),
        100: (0, "it ends where a member's header should be: truncated", []),
        514: (0, "unexpected end of data", []),
        1000: (0, "unexpected end of data", []),
        1024: (1024, "it ends where a member's header should be: truncated", [("a/1.txt", b"one")]),
        1600: (1024, "unexpected end of data", [("a/1.txt", b"one")]),
        2048: (
            2048,
            "it ends where a member's header should be: truncated",
            [("a/1.txt", b"one"), ("a/2.txt", b"two")],
        ),
    }
    for cut, (offset, problem, before) in cuts.items():
        error, files = broken(data[:cut])
        assert (error.offset, str(error), files) == (offset, problem, before), cut


def test_a_damaged_header_is_refused_with_its_offset():
    """A header that fails its checksum, and one whose numbers are not numbers: told apart."""
    data = tar_of([("a/1.txt", b"one"), ("a/2.txt", b"two")], format=tarfile.USTAR_FORMAT)
    flipped = data[:1024] + b"b" + data[1025:]  # a byte of the second header's name
    error, files = broken(flipped)
    assert (error.offset, str(error), files) == (1024, "a damaged member header (bad checksum)", [("a/1.txt", b"one")])
    unreadable = data[:1024] + patched_header(data[1024:1536], 124, b"12345678901x") + data[1536:]  # its size
    error, _ = broken(unreadable)
    assert (error.offset, str(error)) == (1024, "a damaged member header (invalid header)")


@pytest.mark.parametrize(
    "garbage",
    [b"garbage" * 300, bytes(range(256)) * 8, b"PK\x03\x04" + bytes(2044), b"%06o\0 " % 7 * 200],
    ids=["text", "bytes", "zip", "octal"],
)
def test_garbage_is_refused_at_its_first_byte(garbage):
    """What is not a tar fails at byte 0: it is not read as an empty tar, nor as members."""
    error, files = broken(garbage)
    assert error.offset == 0 and files == []
    assert str(error) in ("a damaged member header (bad checksum)", "a damaged member header (invalid header)")


def test_a_sparse_member_is_refused():
    """A GNU sparse file ('S'), or one that pax marks sparse: its bytes are not its contents laid out,
    so a tar shard cannot hold it."""
    plain = tar_member("q/1.txt", b"x")
    gnu = patched_header(plain[:512], 156, b"S") + plain[512:]
    pax = tar_member("q/2.txt", b"x", pax_headers={"GNU.sparse.major": "1", "GNU.sparse.minor": "0"})
    for data, offset in [(gnu + END, 0), (plain + pax + END, 1024)]:
        error, _ = broken(data)
        assert (error.offset, str(error)) == (offset, "a sparse member, which tar shards cannot hold")


def test_damaged_pax_and_long_name_headers_are_refused():
    """A pax header without its member, a pax record of length 0, a pax size that is no number, a
    negative size: each named, at the member's first header."""
    only_pax = tar_member("a/2.txt", b"", pax_headers={"comment": "c"})[:-512]  # its pax header, not its own
    error, _ = broken(only_pax + END)
    assert (error.offset, str(error)) == (0, "it ends after a pax or long-name header, without its member")

    long_name = tar_of([("n" * 150, b"x")], format=tarfile.GNU_FORMAT)[:1024]  # its GNU long-name header only
    error, _ = broken(long_name + END)
    assert (error.offset, str(error)) == (0, "it ends after a pax or long-name header, without its member")

    member = tar_member("a/1.txt", b"x", pax_headers={"comment": "c"})
    zero = member[:512] + member[512:1024].replace(b"13 comment=c", b"0 comment=cc", 1) + member[1024:]
    error, _ = broken(zero + END)
    assert (error.offset, str(error)) == (0, "a damaged pax header (a record of length 0)")

    sized = tar_member("a/1.txt", b"x", pax_headers={"size": "1"})
    sized = sized[:512] + sized[512:1024].replace(b"size=1", b"size=x", 1) + sized[1024:]
    error, _ = broken(sized + END)
    assert (error.offset, str(error)) == (0, "a damaged pax header (size 'x')")

    negative = tar_member("a/1.txt", b"x")
    negative = patched_header(negative[:512], 124, b"\xff" * 12) + negative[512:]
    error, _ = broken(negative + END)
    assert (error.offset, str(error)) == (0, "a damaged member header (a negative size)")


@pytest.mark.parametrize(
    "compression, damage",
    [
        ("gzip", "cut"),
        ("xz", "cut"),
        ("xz", "corrupt"),
        ("bzip2", "cut"),
        ("bzip2", "corrupt"),
    ],
)
def test_a_compressed_tar_cut_short_or_corrupt_is_refused(compression, damage):
    """The decompressor's error (a stream cut short, or a byte changed in the middle) is a BrokenTar
    at the offset of the member being read when it came (in the uncompressed tar); the files wholly
    before it are given first, with their own bytes. Incompressible bytes, so that the middle of the
    compressed stream is the middle of the second file."""
    files = [("c/1.txt", payload(512, seed=1)), ("c/2.txt", payload(20_000, seed=2)), ("c/3.txt", b"three")]
    offsets = {"c/1.txt": 0, "c/2.txt": 1024, "c/3.txt": 1024 + 512 + 20_480}
    data = bytearray(COMPRESSIONS[compression](tar_of(files, format=tarfile.USTAR_FORMAT)))
    middle = len(data) // 2
    if damage == "cut":
        del data[middle:]
    else:
        data[middle] ^= 0xFF
    error, read_before = broken(bytes(data))
    assert error.offset in offsets.values()
    assert read_before == [(name, content) for name, content in files if offsets[name] < error.offset]


def test_a_gzip_tar_changed_in_its_data_is_refused_at_its_end():
    """A byte changed inside deflate's data may decompress without error, to other bytes: gzip's checksum
    at the end of the stream, which the reader reads to after the archive's end, refuses it there (the
    members were given by then: a stream is checked as it goes, and this is the first place it can be)."""
    files = [("c/1.txt", payload(512, seed=1)), ("c/2.txt", payload(20_000, seed=2)), ("c/3.txt", b"three")]
    data = bytearray(COMPRESSIONS["gzip"](tar_of(files, format=tarfile.USTAR_FORMAT)))
    data[len(data) // 2] ^= 0xFF
    error, _ = broken(bytes(data))
    assert "CRC check failed" in str(error)
    assert error.offset == 1024 + 512 + 20_480 + 1024  # the zero block that ends the archive
