"""Packing a prefix of small objects into tar shards in WebDataset's layout.

    python -m s3torchconnector.shards pack s3://bucket/raw/ s3://bucket/shards/ --shard-size 256MiB

Objects become samples by WebDataset's rule on their keys relative to the source prefix:
``raw/a/0001.jpg`` and ``raw/a/0001.cls`` are the sample ``a/0001`` with the fields ``jpg`` and
``cls``. The shards are ``shard-000000.tar``, ``shard-000001.tar``... under the destination, each
with its index beside it (``shard-000000.tar.index.json``, see ShardWriter);
``S3IterableDataset.from_prefix(destination, shard_format="tar")`` streams them, and
``S3MapDataset.from_prefix(destination, shard_format="tar")`` reads any sample at random. The names are all
checked (one listing, no reads) before anything is written: an object that would not read back as
part of a sample (no extension, say) is an error, unless ``--skip-invalid`` leaves it out. Then the
objects are read with many requests in flight and each shard is uploaded while it fills.
"""

import argparse
import re
import sys
from fractions import Fraction
from typing import Iterable, Iterator, List, NamedTuple, Optional, Tuple, TypeVar

from ._listing.key_order import PAGE_SIZE, objects_in_key_order
from ._progress import TerminalProgress
from ._s3client import S3Client, S3ClientConfig
from ._s3dataset_common import S3BucketKeyData
from ._s3uri import parse_s3_uri
from ._tar.samples import key_and_extension
from ._user_agent import UserAgent
from .s3exception import S3Exception
from .s3iterable_dataset import S3IterableDataset
from .shard_writer import (
    DEFAULT_MAX_COUNT,
    DEFAULT_MAX_SIZE,
    ShardInfo,
    ShardWriter,
    check_member_name,
    check_sample_key,
)

SHARD_NAME = "shard-%06d.tar"
_EXAMPLES = 5  # invalid objects named in an error

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


class PackResult(NamedTuple):
    """What :func:`pack` wrote: ``shards``, the ShardInfo of each shard (URI, samples, bytes), in order;
    ``samples``, how many samples they hold; ``skipped``, the keys of the objects left out by
    ``skip_invalid=True``."""

    shards: List[ShardInfo]
    samples: int
    skipped: List[str]  # keys of the objects left out (with skip_invalid)


def parse_size(text: str) -> int:
    """Bytes in ``"256MiB"``, ``"64MB"``, ``"1.5GiB"`` or ``"1000"`` (KiB/MiB/GiB/TiB are powers of
    1024, KB/MB/GB/TB of 1000; case does not matter)."""
    match = _SIZE.match(text) if isinstance(text, str) else None
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"{text!r} is not a size: write bytes, or a number and a unit such as 256MiB, 64MB, 1GiB")
    size = int(Fraction(match.group(1)) * unit)
    if size < 1:
        raise ValueError(f"{text!r} is less than one byte")
    return size


def pack(
    source_uri: str,
    destination_uri: str,
    *,
    region: str,
    shard_size: int = DEFAULT_MAX_SIZE,
    max_count: int = DEFAULT_MAX_COUNT,
    endpoint: Optional[str] = None,
    s3client_config: Optional[S3ClientConfig] = None,
    skip_invalid: bool = False,
    progress=None,
) -> PackResult:
    """Packs the objects under ``source_uri`` into shards under ``destination_uri`` (both prefixes,
    read as folders: a missing trailing / is added). ``progress``, if given, is called with a line
    of text now and then. Bad names raise ValueError before anything is written; a failure later
    leaves the shards completed so far and nothing of the one in progress."""
    bucket, prefix = _folder(source_uri)
    destination_bucket, destination = _folder(destination_uri)
    if destination_bucket == bucket and destination.startswith(prefix):
        raise ValueError(
            f"the destination {destination_uri} is inside the source {source_uri}: the shards would be packed too"
        )
    pattern = f"s3://{destination_bucket}/{destination.replace('%', '%%')}{SHARD_NAME}"
    writer = ShardWriter(
        pattern,
        max_size=shard_size,
        max_count=max_count,
        region=region,
        endpoint=endpoint,
        s3client_config=s3client_config,
    )  # its arguments are checked before any request
    client = S3Client(
        region, endpoint=endpoint, user_agent=UserAgent(["md/shards#pack"]), s3client_config=s3client_config
    )
    existing = _first_key(client, destination_bucket, destination + SHARD_NAME.split("%")[0])
    if existing is not None:
        raise ValueError(
            f"s3://{destination_bucket}/{existing} already exists: a reader of the destination would mix old shards "
            "with new ones; delete them or choose another destination"
        )
    skipped = _check_names(client, bucket, prefix, skip_invalid, progress)

    dataset = S3IterableDataset(
        region, get_dataset_objects=_Packable(bucket, prefix), endpoint=endpoint, s3client_config=s3client_config
    )
    with writer:
        readers = ((reader.key[len(prefix) :], reader) for reader in dataset)
        for key, fields in grouped(readers):
            sample = {"__key__": key}
            for extension, reader in fields:
                sample[extension] = reader.read()
            writer.write(sample)
            if progress is not None:
                progress(f"packed {writer.sample_count:,} samples into {len(writer.shards) + 1:,} shards")
    return PackResult(writer.shards, writer.sample_count, skipped)


def _check_names(client: S3Client, bucket: str, prefix: str, skip_invalid: bool, progress) -> List[str]:
    """Goes through the listing as the packing will, without reading: the keys of the invalid
    objects (an error unless ``skip_invalid``)."""
    invalid: List[Tuple[str, str]] = []
    objects = 0

    def names() -> Iterator[Tuple[str, None]]:
        nonlocal objects
        for info in objects_in_key_order(client, bucket, prefix):
            name = info.key[len(prefix) :]
            if name.endswith("/"):
                continue  # a "folder" marker, not a file
            objects += 1
            problem = member_problem(name)
            if problem is None:
                yield name, None
            else:
                invalid.append((info.key, problem))
            if progress is not None and objects % PAGE_SIZE == 0:
                progress(f"checked {objects:,} objects")
        if progress is not None:
            progress(f"checked {objects:,} objects")

    samples = sum(1 for _ in grouped(names()))
    if invalid and not skip_invalid:
        examples = "; ".join(f"{key} ({problem})" for key, problem in invalid[:_EXAMPLES])
        more = f"; and {len(invalid) - _EXAMPLES} more" if len(invalid) > _EXAMPLES else ""
        raise ValueError(
            f"{len(invalid)} of the {objects} objects under s3://{bucket}/{prefix} cannot be part of a sample: "
            f"{examples}{more}. Rename them, or pass --skip-invalid (skip_invalid=True) to leave them out"
        )
    if samples == 0:
        raise ValueError(f"there is nothing to pack under s3://{bucket}/{prefix}: no shards written")
    return [key for key, _ in invalid]


def member_problem(name: str) -> Optional[str]:
    """Why the object named ``name`` (relative to the source) cannot be a member of a sample, or None."""
    key, _ = key_and_extension(name)
    if key is None:
        return "no extension: readers skip members without one"
    extension = name[len(key) + 1 :]  # as written, not lower-cased: members keep the objects' names
    if extension.startswith("_"):
        return "its extension starts with '_', which WebDataset's writer takes for metadata"
    try:
        check_sample_key(key)
        check_member_name(key, extension)
    except (TypeError, ValueError) as error:
        return str(error)
    return None


class _Packable:
    """The objects under the prefix that can be members (so that the others are not even read)."""

    def __init__(self, bucket: str, prefix: str):
        self.bucket, self.prefix = bucket, prefix

    def __call__(self, client: S3Client) -> Iterator[S3BucketKeyData]:
        # Key order keeps a sample's objects (k.jpg, k.cls) next to each other, whatever the bucket lists.
        for info in objects_in_key_order(client, self.bucket, self.prefix):
            name = info.key[len(self.prefix) :]
            if not name.endswith("/") and member_problem(name) is None:
                yield S3BucketKeyData(self.bucket, info.key, info)


T = TypeVar("T")


def grouped(objects: Iterable[Tuple[str, T]]) -> Iterator[Tuple[str, List[Tuple[str, T]]]]:
    """(key, [(extension, item)]) for each run of consecutive names with one key, WebDataset's rule.

    In listing order a key's objects ``k.*`` are consecutive, unless a folder named ``k.<something>/``
    sorts between them: its samples would split the key's into two samples with one key, so that
    is an error. To see it, keep the keys whose ``k.`` range the listing is still in (a short stack).
    """
    key: Optional[str] = None
    fields: List[Tuple[str, T]] = []
    within: List[str] = []
    for name, item in objects:
        base, _ = key_and_extension(name)
        if base is None:
            raise ValueError(f"{name!r} has no extension: it cannot be a member of a sample")
        extension = name[len(base) + 1 :]
        while within and not name.startswith(within[-1] + "."):
            within.pop()
        if base != key:
            if base in within:
                raise ValueError(
                    f"the objects of the sample {base!r} are not consecutive in listing order: those of {key!r}, "
                    f"in a folder named {base.rsplit('/', 1)[-1] + '.'!r}..., sort between them; rename that folder"
                )
            if key is not None:
                yield key, fields
            key, fields = base, []
            within.append(base)
        if any(extension.lower() == other.lower() for other, _ in fields):
            raise ValueError(
                f"the sample {key!r} has two objects with the extension {extension.lower()!r} (cases differ)"
            )
        fields.append((extension, item))
    if key is not None:
        yield key, fields


def _folder(uri: str) -> Tuple[str, str]:
    bucket, prefix = parse_s3_uri(uri)
    return bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _first_key(client: S3Client, bucket: str, prefix: str) -> Optional[str]:
    for page in client.list_objects(bucket, prefix, max_keys=1):
        for info in page.object_info:
            return info.key
    return None


def _size_argument(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Optional[List[str]] = None, prog: str = "python -m s3torchconnector.shards") -> int:
    """The ``pack`` command (``s3torchconnector pack`` or ``python -m s3torchconnector.shards pack``):
    parses ``argv`` (``sys.argv[1:]`` when None; its first word is the subcommand, ``pack``), packs with
    :func:`pack`, prints how many shards and samples it wrote and returns the exit status: 0, or 1
    when packing failed (bad names, a used destination, an S3 error), with the error on stderr. Bad
    arguments exit with status 2 and argparse's message. ``prog`` is the program's name before the
    subcommand in usage and messages (``s3torchconnector`` makes them ``s3torchconnector pack``)."""
    parser = argparse.ArgumentParser(prog=prog, description="Tar shards in S3.")
    commands = parser.add_subparsers(dest="command", required=True, help="what to do (pack is the one command)")
    pack_parser = commands.add_parser(
        "pack",
        help="pack a prefix of small objects into tar shards",
        description="Group the objects under SOURCE into samples by WebDataset's rule (a/0001.jpg + a/0001.cls -> "
        f"sample a/0001) and write them as tar shards named {SHARD_NAME} under DESTINATION.",
    )
    pack_parser.add_argument("source", help="s3://bucket/prefix/ of the objects")
    pack_parser.add_argument("destination", help="s3://bucket/prefix/ for the shards")
    pack_parser.add_argument(
        "--shard-size",
        type=_size_argument,
        default=DEFAULT_MAX_SIZE,
        help="largest shard, e.g. 256MiB, 64MB, 1GiB, or bytes (default 256MiB)",
    )
    pack_parser.add_argument(
        "--max-count",
        type=int,
        default=DEFAULT_MAX_COUNT,
        help=f"most samples in a shard (default {DEFAULT_MAX_COUNT})",
    )
    pack_parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave out objects that cannot be part of a sample (no extension...) instead of failing",
    )
    pack_parser.add_argument("--region", default="us-east-1", help="AWS Region of the buckets (default us-east-1)")
    pack_parser.add_argument(
        "--endpoint",
        default=None,
        help="S3 endpoint URL, for S3-compatible servers (default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS S3)",
    )
    args = parser.parse_args(argv)

    progress = TerminalProgress("{}") if sys.stderr.isatty() else None
    try:
        result = pack(
            args.source,
            args.destination,
            region=args.region,
            endpoint=args.endpoint,
            shard_size=args.shard_size,
            max_count=args.max_count,
            skip_invalid=args.skip_invalid,
            progress=progress,
        )
    except (ValueError, TypeError, S3Exception) as error:
        if progress is not None:
            progress.done()
        print(f"{parser.prog} pack: error: {error}", file=sys.stderr)
        return 1
    if progress is not None:
        progress.done()
    if result.skipped:
        print(f"skipped {len(result.skipped):,} objects that cannot be part of a sample, e.g. {result.skipped[0]}")
    print(f"wrote {len(result.shards):,} shards, {result.samples:,} samples, to {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
