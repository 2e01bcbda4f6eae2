"""DCPOptimizedS3Reader: fetches only the byte ranges a PyTorch Distributed Checkpoint load needs.

A DCP data file is a run of items (one ``torch.save`` blob per tensor, raw bytes for other
objects) at known offsets. When the load plan is known, the reader of a file is given the byte
ranges the plan will read. It fetches them in offset order, coalescing ranges whose gap is at most
``max_gap_size`` into one ranged GET (the gap bytes are downloaded and dropped, which is cheaper
than another request), and holds one item in memory at a time so ``torch.load`` can seek within it.

Reads outside the planned ranges still work (each costs a ranged GET of just the bytes asked for),
so the reader is correct for any access pattern; it is fast for the one DCP uses.
"""

import bisect
import io
import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .s3reader import S3Reader, check_read_size, readinto_full
from .sequential import SequentialS3Reader

log = logging.getLogger(__name__)

DEFAULT_MAX_GAP_SIZE = 32 * 1024 * 1024
_SKIP_CHUNK = 1024 * 1024
# What a failed planned read advises (the original's name for it).
FALLBACK_GUIDANCE = (
    "To read the checkpoint without planned ranges, use the generic reader: "
    "S3StorageReader(region, path, reader_constructor=S3ReaderConstructor.default())"
)


@dataclass
class ItemRange:
    """Bytes [start, end) of an object that a load will read."""

    start: int
    end: int


@dataclass
class RangeGroup:
    """Ranges fetched by one ranged GET of bytes [start, end)."""

    start: int
    end: int
    item_ranges: List[ItemRange]


RangeLike = Union[ItemRange, Tuple[int, int]]


def _as_range(value: RangeLike) -> ItemRange:
    if isinstance(value, ItemRange):
        start, end = value.start, value.end
    else:
        try:
            start, end = value
        except (TypeError, ValueError):
            raise TypeError(f"a byte range must be an ItemRange or a (start, end) pair, got {value!r}") from None
    for bound in (start, end):
        if isinstance(bound, bool) or not isinstance(bound, int):
            raise TypeError(f"byte range bounds must be ints, got {value!r}")
    if start < 0 or end < start:
        raise ValueError(f"invalid byte range [{start}, {end}): need 0 <= start <= end")
    return ItemRange(start, end)


def normalize_ranges(ranges: Iterable[RangeLike]) -> List[ItemRange]:
    """Sorted, without empty ranges, overlapping ranges merged (touching ones stay apart, so one
    item is buffered at a time)."""
    items = sorted((r for r in map(_as_range, ranges) if r.end > r.start), key=lambda r: (r.start, r.end))
    merged: List[ItemRange] = []
    for item in items:
        if merged and item.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = ItemRange(last.start, max(last.end, item.end))
        else:
            merged.append(item)
    return merged


def coalesce_ranges(ranges: Iterable[RangeLike], max_gap_size: Union[int, float]) -> List[RangeGroup]:
    """Groups the ranges so that ranges at most ``max_gap_size`` bytes apart share one request."""
    _check_max_gap_size(max_gap_size)
    groups: List[RangeGroup] = []
    current: List[ItemRange] = []
    for item in normalize_ranges(ranges):
        if current and item.start - current[-1].end > max_gap_size:
            groups.append(RangeGroup(current[0].start, current[-1].end, current))
            current = []
        current.append(item)
    if current:
        groups.append(RangeGroup(current[0].start, current[-1].end, current))
    return groups


def _check_max_gap_size(max_gap_size) -> None:
    # A float is allowed for float("inf"): every range of a file in one request, as the original documents.
    if isinstance(max_gap_size, bool) or not isinstance(max_gap_size, (int, float)) or not max_gap_size >= 0:
        raise ValueError(
            f"max_gap_size must be a non-negative number of bytes (float('inf') for no limit), got {max_gap_size!r}"
        )


class DCPOptimizedS3Reader(S3Reader):
    """A reader that fetches only the given byte ranges of an object, in offset order.

    Made by :meth:`S3ReaderConstructor.dcp_optimized` for the data files of a DCP load; the
    ranges come from the load plan (see ``s3torchconnector.dcp.S3StorageReader``).
    """

    def __init__(
        self,
        bucket: str,
        key: str,
        item_ranges: Sequence[RangeLike],
        get_object_info: Callable,
        get_stream: Callable,
        max_gap_size: Union[int, float] = DEFAULT_MAX_GAP_SIZE,
    ):
        super().__init__(bucket, key)
        _check_max_gap_size(max_gap_size)
        self._get_object_info = get_object_info
        self._get_stream = get_stream
        self._max_gap_size = max_gap_size
        self._groups = coalesce_ranges(item_ranges, max_gap_size)
        self._items: List[ItemRange] = [item for group in self._groups for item in group.item_ranges]
        self._item_starts = [item.start for item in self._items]
        self._item_group = [g for g, group in enumerate(self._groups) for _ in group.item_ranges]
        self._object_size: Optional[int] = None
        self._position = 0
        # The open ranged GET: it has delivered the bytes before _stream_pos, and ends at _stream_end.
        self._stream: Any = None  # a native GetObjectStream, or the in-memory client's
        self._stream_pos = 0
        self._stream_end = 0
        # The item held in memory.
        self._item_index: Optional[int] = None
        self._item_buffer: Optional[memoryview] = None
        self.bytes_requested = 0  # bytes asked of S3 by this reader, for inspection

    @property
    def ranges(self) -> List[ItemRange]:
        """The planned byte ranges this reader serves, in offset order (a copy)."""
        return list(self._items)

    @property
    def range_groups(self) -> List[RangeGroup]:
        """The planned ranges grouped by request: each group is fetched with one ranged GET (a copy)."""
        return list(self._groups)

    def get_object_info(self):
        """The object's HeadObjectResult (size, ETag...): one HEAD request unless already known."""
        return self._get_object_info()

    def _size(self) -> int:
        if self._object_size is None:
            self._object_size = self._get_object_info().size
        return self._object_size

    # ---- locating and loading items ----

    def _item_at(self, position: int) -> Optional[int]:
        index = bisect.bisect_right(self._item_starts, position) - 1
        if index >= 0 and position < self._items[index].end:
            return index
        return None

    def _open(self, start: int, end: int) -> None:
        self._close_stream()
        self._stream = self._get_stream(start, end)
        self.bytes_requested += end - start
        self._stream_pos = start
        self._stream_end = end

    def _close_stream(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # a finished stream may refuse; nothing is lost
                pass
        self._stream = None

    def _fill(self, out: memoryview) -> None:
        filled = 0
        while filled < len(out):
            n = self._stream.readinto(out[filled:])
            if not n:
                raise EOFError(
                    f"{self.uri} ended at byte {self._stream_pos + filled}, before the planned range "
                    f"ending at {self._stream_pos + len(out)}: was the object changed during the load? "
                    + FALLBACK_GUIDANCE
                )
            filled += n
        self._stream_pos += filled

    def _skip_to(self, position: int) -> None:
        remaining = position - self._stream_pos
        if remaining <= 0:
            return
        scratch = memoryview(bytearray(min(remaining, _SKIP_CHUNK)))
        while remaining > 0:
            n = min(remaining, len(scratch))
            self._fill(scratch[:n])
            remaining -= n

    def _load_item(self, index: int) -> memoryview:
        if self._item_index == index and self._item_buffer is not None:
            return self._item_buffer
        item = self._items[index]
        group = self._groups[self._item_group[index]]
        if self._stream is None or not (self._stream_pos <= item.start and item.end <= self._stream_end):
            # A new group, or a step back: fetch from this item to the end of its group.
            self._open(item.start, group.end)
        self._skip_to(item.start)
        self._item_buffer = None
        buffer = memoryview(bytearray(item.end - item.start))
        self._fill(buffer)
        self._item_index = index
        self._item_buffer = buffer
        if self._stream_pos >= self._stream_end:
            self._close_stream()
        return buffer

    def _copy_out(self, out: memoryview) -> int:
        """Copies bytes from the current position into ``out``; returns how many."""
        position = self._position
        written = 0
        while written < len(out):
            index = self._item_at(position)
            if index is not None:
                item = self._items[index]
                buffer = self._load_item(index)
                n = min(len(out) - written, item.end - position)
                offset = position - item.start
                out[written : written + n] = buffer[offset : offset + n]
            else:
                n = self._read_unplanned(position, out[written:])
                if n == 0:
                    break
            written += n
            position += n
        self._position = position
        return written

    def _read_unplanned(self, position: int, out: memoryview) -> int:
        """Bytes outside the planned ranges: a ranged GET of just those bytes (up to the next range)."""
        next_index = bisect.bisect_right(self._item_starts, position)
        end = position + len(out)
        if next_index < len(self._items):
            end = min(end, self._items[next_index].start)
        end = min(end, self._size())
        if end <= position:
            return 0
        log.debug("%s: read of bytes [%d, %d) outside the planned ranges", self.uri, position, end)
        stream = self._get_stream(position, end)
        self.bytes_requested += end - position
        try:
            return readinto_full(stream, out[: end - position])
        finally:
            try:
                stream.close()
            except Exception:
                pass

    # ---- the file interface ----

    def read(self, size: Optional[int] = None) -> bytes:
        self._check_not_closed()
        size = check_read_size(size)
        if size is None:
            size = max(0, self._size() - self._position)
        if size == 0:
            return b""
        index = self._item_at(self._position)
        if index is not None and self._position + size <= self._items[index].end:
            # The common case: all of it within one item, served straight from its buffer.
            buffer = self._load_item(index)
            offset = self._position - self._items[index].start
            self._position += size
            return buffer[offset : offset + size].tobytes()
        out = bytearray(size)
        n = self._copy_out(memoryview(out))
        return bytes(out) if n == size else bytes(out[:n])

    def readinto(self, buf) -> int:
        self._check_not_closed()
        target = memoryview(buf)
        if target.readonly:
            raise TypeError(f"readinto needs a writable buffer, got a read-only {type(buf).__name__}")
        return self._copy_out(target.cast("B"))

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        self._check_not_closed()
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise TypeError(f"seek offset must be an int, got {type(offset).__name__}")
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._position + offset
        elif whence == io.SEEK_END:
            target = self._size() + offset
        else:
            raise ValueError(f"invalid whence ({whence}): use io.SEEK_SET, io.SEEK_CUR or io.SEEK_END")
        if target < 0:
            raise ValueError(f"seek would move before the start of the object (position {target})")
        # Within the planned ranges the object is known to be long enough; elsewhere clamp to its size.
        if target > self._position and self._item_at(target) is None and not self._ends_an_item(target):
            target = min(target, self._size())
        self._position = target
        return target

    def _ends_an_item(self, position: int) -> bool:
        index = bisect.bisect_right(self._item_starts, position - 1) - 1
        return index >= 0 and self._items[index].end == position

    def tell(self) -> int:
        self._check_not_closed()
        return self._position

    def close(self) -> None:
        """Cancels the ranged GET in flight and frees the item held in memory; a closed reader raises
        ValueError on reads and seeks. Closing twice is harmless."""
        if not self.closed:
            self._close_stream()
            self._item_buffer = None
            self._item_index = None
        super().close()


class DCPOptimizedConstructor:
    """The reader constructor made by :meth:`S3ReaderConstructor.dcp_optimized`.

    Files whose byte ranges were registered (by :meth:`set_item_ranges_by_file` from a load plan,
    or :meth:`set_file_ranges`) get a :class:`DCPOptimizedS3Reader`; every other object (the
    ``.metadata`` file, objects read outside a planned load) gets a :class:`SequentialS3Reader`.
    """

    reader_type = "dcp_optimized"

    def __init__(self, max_gap_size: Union[int, float] = DEFAULT_MAX_GAP_SIZE):
        _check_max_gap_size(max_gap_size)
        self._max_gap_size = max_gap_size
        # s3://bucket/key (or a bare key) -> the ranges a load reads of it
        self._item_ranges_by_file: Dict[str, List[ItemRange]] = {}

    @property
    def max_gap_size(self) -> Union[int, float]:
        """Planned ranges at most this many bytes apart share one request."""
        return self._max_gap_size

    def set_item_ranges_by_file(self, plan_items, storage_data, base_path) -> None:
        """Registers the ranges a DCP load plan reads: ``plan_items`` are its ``ReadItem``s,
        ``storage_data`` maps their ``storage_index`` to where each lies (file, offset, length),
        and ``base_path`` is the checkpoint's ``s3://`` location. Replaces what was registered."""
        if plan_items and not storage_data:
            raise ValueError("storage_data must not be empty: it says where each planned item lies")
        file_ranges: Dict[str, List[Tuple[int, int]]] = {}
        for item in plan_items or ():
            info = storage_data[item.storage_index]
            uri = f"{str(base_path).rstrip('/')}/{info.relative_path.lstrip('/')}"
            file_ranges.setdefault(uri, []).append((info.offset, info.offset + info.length))
        self.set_file_ranges(file_ranges)

    def set_file_ranges(self, file_ranges: Mapping[str, Sequence[RangeLike]]) -> None:
        """Registers the byte ranges to read, per object: keys are ``s3://bucket/key`` URIs (or
        bare keys). Replaces what was registered before."""
        if not isinstance(file_ranges, dict):
            raise TypeError(f"file_ranges must be a dict of URI to ranges, got {type(file_ranges).__name__}")
        self._item_ranges_by_file = {name: normalize_ranges(ranges) for name, ranges in file_ranges.items()}

    def clear_file_ranges(self) -> None:
        """Forgets every registered range: objects are then read sequentially until ranges are set again."""
        self._item_ranges_by_file = {}

    def ranges_for(self, bucket: str, key: str) -> Optional[List[ItemRange]]:
        """The ranges registered for the object (under its ``s3://bucket/key`` URI, else its bare key),
        or None when it has none and would be read sequentially."""
        ranges = self._item_ranges_by_file.get(f"s3://{bucket}/{key}")
        if ranges is None:
            ranges = self._item_ranges_by_file.get(key)
        return ranges

    def __call__(self, bucket: str, key: str, get_object_info: Callable, get_stream: Callable) -> S3Reader:
        ranges = self.ranges_for(bucket, key)
        if ranges is None:
            return SequentialS3Reader(bucket, key, get_object_info, get_stream)
        return DCPOptimizedS3Reader(
            bucket,
            key,
            item_ranges=ranges,
            get_object_info=get_object_info,
            get_stream=get_stream,
            max_gap_size=self._max_gap_size,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_gap_size={self._max_gap_size})"
