"""A ListObjectsV2 response read in one pass (cpp/list_result.h), against Python's own XML parser:
every document it parses as a ListBucketResult reads the same here, whatever its bytes; none crashes
(the sanitizer build runs this too)."""

import random
import xml.etree.ElementTree as ElementTree

from s3torchconnector import _native

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

DOCUMENT = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    "<Name>bucket</Name><Prefix>data/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>"
    "<IsTruncated>true</IsTruncated>"
    "<Contents><Key>data/a &amp; b.bin</Key><LastModified>2026-12-05T09:36:12.000Z</LastModified>"
    "<ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>123</Size>"
    "<Owner><ID>x</ID><DisplayName>y</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents>\n"
    '  <Contents><Key>data/&#x65E5;&#26412;&lt;x&gt;</Key><ETag>"e-2"</ETag><Size>0</Size>'
    "<ChecksumAlgorithm>CRC32</ChecksumAlgorithm></Contents>"
    "<Contents><Key><![CDATA[data/<raw>]]></Key><Size>7</Size><StorageClass/></Contents>"
    "<CommonPrefixes><Prefix>data/sub/</Prefix></CommonPrefixes>"
    "<NextContinuationToken>token+/=</NextContinuationToken>"
    "<!-- a comment --></ListBucketResult>\n"
)


def reference(document: bytes):
    """What ElementTree reads of the same document; None when it refuses it."""
    try:
        root = ElementTree.fromstring(document)
    except (ElementTree.ParseError, ValueError, LookupError):  # LookupError: a mutated encoding name
        return None
    if root.tag.split("}")[-1] != "ListBucketResult":
        return None

    def local(element):
        return element.tag.split("}")[-1]

    def text(element):
        return "".join(element.itertext())

    def child(element, name):
        found = [c for c in element if local(c) == name]
        return text(found[-1]) if found else ""

    objects, prefixes, token, truncated = [], [], "", False
    for element in root:
        name = local(element)
        if name == "Contents":
            size = child(element, "Size")
            objects.append(
                (
                    child(element, "Key"),
                    child(element, "ETag"),
                    int(size) if size.isdigit() and size.isascii() and int(size) < 2**64 - 10 else 0,
                    child(element, "LastModified"),
                    child(element, "StorageClass"),
                )
            )
        elif name == "CommonPrefixes":
            found = [c for c in element if local(c) == "Prefix"]
            prefixes.append(text(found[0]) if found else "")
        elif name == "NextContinuationToken":
            token = text(element)
        elif name == "IsTruncated":
            truncated = text(element) == "true"
    return objects, prefixes, token, truncated


def test_a_listing_page_reads_every_field():
    objects, prefixes, token, truncated = _native._parse_list_result(DOCUMENT.encode())
    assert objects == [
        ("data/a & b.bin", '"0123456789abcdef0123456789abcdef"', 123, "2026-12-05T09:36:12.000Z", "STANDARD"),
        ("data/日本<x>", '"e-2"', 0, "", ""),
        ("data/<raw>", "", 7, "", ""),
    ]
    assert (prefixes, token, truncated) == (["data/sub/"], "token+/=", True)
    assert reference(DOCUMENT.encode()) == (objects, prefixes, token, truncated)


def test_documents_that_are_not_a_listing_are_refused():
    for document in (
        b"",
        b"<Error><Code>x</Code></Error>",
        b"<ListBucketResult>",
        b"not xml",
        b"<ListBucketResult><Key>&bogus;</Key></ListBucketResult>",
    ):
        assert _native._parse_list_result(document) is None


def test_mutated_documents_read_as_the_reference_reads_them():
    rng = random.Random(5)
    raw = DOCUMENT.encode()
    alphabet = b"<>/&;#x\"'![]-? aZ09\x00\xff"
    agreed = 0
    for _ in range(4000):
        document = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            spot = rng.randrange(len(document))
            action = rng.randrange(3)
            if action == 0:
                del document[spot : spot + rng.randrange(1, 12)]
            elif action == 1:
                document[spot:spot] = bytes([rng.choice(alphabet)])
            else:
                document[spot] = rng.choice(alphabet)
        expected = reference(bytes(document))
        try:
            ours = _native._parse_list_result(bytes(document))
        except UnicodeDecodeError:  # a text that is not UTF-8: refused when Python makes it a str
            assert expected is None
            continue
        if expected is not None:
            assert ours == expected, bytes(document)
            agreed += 1
    assert agreed > 200  # the mutations that keep a well-formed document, read alike
