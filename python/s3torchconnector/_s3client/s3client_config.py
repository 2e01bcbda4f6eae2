"""S3ClientConfig: the knobs of the native S3 client, checked when made."""

import socket
from dataclasses import dataclass
from os import PathLike
from typing import Optional, Tuple, Union

from .._cache.settings import check_max_bytes

MIB = 1024 * 1024
GIB = 1024 * MIB
MAX_PART_SIZE = 5 * GIB  # S3's largest part
CHECKSUM_ALGORITHMS = ("CRC32C", "CRC32", "CRC64NVME", "SHA1", "SHA256")
MAX_STALL_TIMEOUT_SECONDS = 24 * 3600
MIN_MEMORY_LIMIT = 256 * MIB  # the least the CRT's buffer pool takes
MAX_ATTEMPTS = 64  # the first attempt and the CRT's most retries, 63 (its exponential backoff's bound)


@dataclass(frozen=True)
class S3ClientConfig:
    """Settings for the S3 client.

    Args:
        throughput_target_gbps: the throughput (gigabits per second) the client sizes its
            connection pool for. 10.0 by default.
        part_size: bytes per part of ranged downloads and multipart uploads, up to 5 GiB.
            8 MiB by default. Whole-object reads (the sequential reader) use 4 MiB parts: more
            connections within the same memory. S3 takes no upload part under 5 MiB but the last,
            so an upload uses 5 MiB parts when this is smaller (and sends objects up to 5 MiB in
            one request).
        unsigned: send anonymous, unsigned requests (public buckets).
        force_path_style: address buckets as ``endpoint/bucket/key`` instead of
            ``bucket.endpoint/key``.
        max_attempts: attempts per request for errors worth retrying (throttling,
            5xx, dropped connections), from 1 to 64.
        profile: the named profile of the shared AWS config and credentials files.
        requester_pays: accept the charges of requester-pays buckets.
        upload_checksum: the checksum sent with every uploaded part for S3 to verify:
            "CRC32C" (default), "CRC32", "CRC64NVME", "SHA1", "SHA256", or None for none.
        validate_checksums: verify downloads against the checksum S3 keeps for the object, when
            it has one. None (default) means on for S3Checkpoint and off elsewhere: for an object
            whose size is not known it costs one HEAD request.
        stall_timeout_seconds: a connection that moves fewer than
            ``min_throughput_bytes_per_second`` for this many seconds while a request waits on it
            is dropped and the request retried (within ``max_attempts``). 30 by default.
        min_throughput_bytes_per_second: the throughput below which a connection counts as
            stalled. 1 by default (only a connection that moves nothing at all is dropped).
        memory_limit_bytes: the most memory the client's part buffers may take, at least 256 MiB
            and two parts. None (default): the CRT's choice for ``throughput_target_gbps``, or
            ``AWS_CRT_S3_MEMORY_LIMIT_IN_MB`` / ``_IN_GIB`` from the environment.
        network_interface_names: network interfaces (such as ``("eth0", "eth1")``) to spread the
            client's connections over, for instances with several network cards; each must exist
            on this machine (Linux binds with SO_BINDTODEVICE). None (default): the system routes.
        cache_dir: a local folder for the node cache, shared by every process on the machine that
            names it: whole-object reads are kept there and served from there afterwards. None
            (default): ``S3_TORCH_CONNECTOR_CACHE_DIR`` from the environment, else no cache.
        cache_max_bytes: the most bytes the cache's entries may take on disk, as a number or a size
            such as ``"500GiB"``. None (default): ``S3_TORCH_CONNECTOR_CACHE_MAX_BYTES``, else 10 GiB.
    """

    throughput_target_gbps: float = 10.0
    part_size: int = 8 * MIB
    unsigned: bool = False
    force_path_style: bool = False
    max_attempts: int = 10
    profile: Optional[str] = None
    requester_pays: bool = False
    upload_checksum: Optional[str] = "CRC32C"
    validate_checksums: Optional[bool] = None
    stall_timeout_seconds: int = 30
    min_throughput_bytes_per_second: int = 1
    memory_limit_bytes: Optional[int] = None
    network_interface_names: Optional[Tuple[str, ...]] = None
    cache_dir: Optional[Union[str, "PathLike[str]"]] = None
    cache_max_bytes: Optional[Union[int, str]] = None

    def __post_init__(self):
        _check_type("throughput_target_gbps", self.throughput_target_gbps, (int, float))
        if not self.throughput_target_gbps > 0:
            raise ValueError(f"throughput_target_gbps must be positive, got {self.throughput_target_gbps}")
        _check_type("part_size", self.part_size, int)
        if not 1 <= self.part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be from 1 byte to 5 GiB ({MAX_PART_SIZE}), got {self.part_size}")
        _check_type("unsigned", self.unsigned, bool)
        _check_type("force_path_style", self.force_path_style, bool)
        _check_type("max_attempts", self.max_attempts, int)
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            raise ValueError(
                f"max_attempts must be from 1 to {MAX_ATTEMPTS}, got {self.max_attempts}: the CRT's backoff "
                f"retries a request at most {MAX_ATTEMPTS - 1} times"
            )
        if self.profile is not None:
            _check_type("profile", self.profile, str)
        _check_type("requester_pays", self.requester_pays, bool)
        if self.upload_checksum is not None and self.upload_checksum not in CHECKSUM_ALGORITHMS:
            raise ValueError(
                f"upload_checksum must be one of {', '.join(CHECKSUM_ALGORITHMS)} or None, got {self.upload_checksum!r}"
            )
        if self.validate_checksums is not None:
            _check_type("validate_checksums", self.validate_checksums, bool)
        _check_type("stall_timeout_seconds", self.stall_timeout_seconds, int)
        if not 1 <= self.stall_timeout_seconds <= MAX_STALL_TIMEOUT_SECONDS:
            raise ValueError(
                f"stall_timeout_seconds must be from 1 to {MAX_STALL_TIMEOUT_SECONDS}, got {self.stall_timeout_seconds}"
            )
        _check_type("min_throughput_bytes_per_second", self.min_throughput_bytes_per_second, int)
        if self.min_throughput_bytes_per_second < 1:
            raise ValueError(
                f"min_throughput_bytes_per_second must be at least 1, got {self.min_throughput_bytes_per_second}"
            )
        if self.memory_limit_bytes is not None:
            _check_type("memory_limit_bytes", self.memory_limit_bytes, int)
            least = max(MIN_MEMORY_LIMIT, 2 * self.part_size)
            if self.memory_limit_bytes < least:
                raise ValueError(
                    f"memory_limit_bytes must be at least {least} (256 MiB, and two parts of part_size), "
                    f"got {self.memory_limit_bytes}"
                )
        if self.network_interface_names is not None:
            # A list is taken too, and kept as a tuple: the config stays hashable and frozen.
            _check_type("network_interface_names", self.network_interface_names, (tuple, list))
            object.__setattr__(self, "network_interface_names", tuple(self.network_interface_names))
            _check_interfaces(self.network_interface_names)
        if self.cache_dir is not None:
            _check_type("cache_dir", self.cache_dir, (str, PathLike))
            if not str(self.cache_dir):
                raise ValueError("cache_dir must name a folder, got an empty path")
        object.__setattr__(self, "cache_max_bytes", check_max_bytes(self.cache_max_bytes, "cache_max_bytes"))
        if self.requester_pays and self.unsigned:
            raise ValueError(
                "requester_pays needs signed requests: S3 bills the requester by its credentials, "
                "so it cannot be combined with unsigned=True"
            )

    def native_options(self, region: str, endpoint: str, user_agent: str) -> dict:
        """Every option of the native client (ClientConfig in cpp/client.h), by its native name.

        The native side has no defaults of its own: each is decided here.
        """
        return dict(
            region=region,
            endpoint=endpoint,
            user_agent=user_agent,
            throughput_target_gbps=float(self.throughput_target_gbps),
            part_size=self.part_size,
            unsigned_requests=self.unsigned,
            force_path_style=self.force_path_style,
            max_attempts=self.max_attempts,
            profile=self.profile or "",
            requester_pays=self.requester_pays,
            upload_checksum=self.upload_checksum or "",
            # None (per-use default) is decided by the caller; S3Checkpoint passes a config with True.
            validate_checksums=bool(self.validate_checksums),
            stall_timeout_seconds=self.stall_timeout_seconds,
            min_throughput_bytes_per_second=self.min_throughput_bytes_per_second,
            memory_limit_bytes=self.memory_limit_bytes or 0,
            network_interface_names=list(self.network_interface_names or ()),
        )


def _check_interfaces(names: Tuple[str, ...]) -> None:
    """Each name is an interface of this machine: a wrong one would fail every connection made through it."""
    if not names:
        raise ValueError("network_interface_names must name at least one interface, or be None")
    known = [name for _, name in socket.if_nameindex()] if hasattr(socket, "if_nameindex") else None
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"network_interface_names must hold interface names (non-empty str), got {name!r}")
        if known is not None and name not in known:
            raise ValueError(f"network interface {name!r} does not exist on this machine; it has {', '.join(known)}")


def _check_type(name: str, value, expected) -> None:
    # bool is an int in Python; a flag passed as a number (or a number as a flag) is a mistake.
    if isinstance(value, bool) and expected is not bool and bool not in _as_tuple(expected):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not isinstance(value, expected):
        names = " or ".join(t.__name__ for t in _as_tuple(expected))
        raise TypeError(f"{name} must be {names}, got {type(value).__name__} {value!r}")


def _as_tuple(expected):
    return expected if isinstance(expected, tuple) else (expected,)
