"""Where the node cache lives and how many bytes it may hold, from S3ClientConfig or the environment."""

import os
import re
from dataclasses import dataclass
from typing import Optional, Union

DIR_VARIABLE = "S3_TORCH_CONNECTOR_CACHE_DIR"
MAX_BYTES_VARIABLE = "S3_TORCH_CONNECTOR_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 10 * 1024**3

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(text: str, what: str) -> int:
    """Bytes from "1073741824", "500GiB", "1.5 TB" (decimal kB/MB/GB/TB, binary KiB/MiB/GiB/TiB)."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"{what} must be a size such as 1073741824, 500GiB or 1.5TB, got {text!r}")
    return int(float(match.group(1)) * _UNITS[unit])


def check_max_bytes(value: Union[int, str, None], what: str) -> Optional[int]:
    """The bound in bytes (None: not given); a string may carry a unit."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_size(value, what)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a number of bytes or a size such as '500GiB', got {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be at least 1 byte, got {value}")
    return value


@dataclass(frozen=True)
class CacheSettings:
    """A cache directory and its bound."""

    directory: str
    max_bytes: int


def resolve(
    cache_dir: Optional[Union[str, "os.PathLike[str]"]], cache_max_bytes: Optional[Union[int, str]]
) -> Optional[CacheSettings]:
    """The config's settings, else the environment's; None when the cache is off (no directory).

    Read when a client is made, so DataLoader workers (which get the client pickled or forked)
    use the settings of the process that made it.
    """
    directory = cache_dir if cache_dir is not None else os.environ.get(DIR_VARIABLE) or None
    if directory is None:
        return None
    max_bytes = check_max_bytes(cache_max_bytes, "cache_max_bytes")
    if max_bytes is None and os.environ.get(MAX_BYTES_VARIABLE):
        max_bytes = check_max_bytes(os.environ[MAX_BYTES_VARIABLE], MAX_BYTES_VARIABLE)
    return CacheSettings(os.path.abspath(os.fspath(directory)), max_bytes or DEFAULT_MAX_BYTES)
