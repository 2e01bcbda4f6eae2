"""S3ReaderConstructor: picks the reader strategy S3Client builds for each object."""

from functools import partial
from typing import Optional, Union

from .dcp_optimized import DEFAULT_MAX_GAP_SIZE, DCPOptimizedConstructor
from .protocol import S3ReaderConstructorProtocol
from .ranged import RangedS3Reader
from .sequential import SequentialS3Reader


class S3ReaderConstructor:
    """Factories for reader constructors, passed as ``reader_constructor=`` to datasets,
    S3Client and checkpoints.

    - ``sequential()``: fetch the whole object into one buffer (default). Best for whole reads.
    - ``range_based(buffer_size)``: fetch only the byte ranges read. Best for sparse reads of
      large objects.
    - ``dcp_optimized(max_gap_size)``: for PyTorch Distributed Checkpoint loads: fetch only the byte
      ranges the load plan reads (the default of ``s3torchconnector.dcp.S3StorageReader``).
    """

    @staticmethod
    def sequential() -> S3ReaderConstructorProtocol:
        """A constructor of SequentialS3Reader: each object read through one GET, whole or front to
        back. The default of datasets, S3Client and checkpoints; best for reading objects whole."""
        return partial(SequentialS3Reader)

    @staticmethod
    def range_based(buffer_size: Optional[int] = None) -> S3ReaderConstructorProtocol:
        """A constructor of RangedS3Reader: only the byte ranges read are fetched, in memory bounded
        by ``buffer_size`` for objects of any size.

        ``buffer_size``: the most fetched ahead for reads smaller than it (8 MiB when None, 0 for
        none): a read after a seek fetches exactly its bytes; reads that follow each other grow a
        read-ahead up to this size. Anything but None or a non-negative int raises ValueError."""
        if buffer_size is not None and (
            isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 0
        ):
            raise ValueError(f"buffer_size must be a non-negative int or None, got {buffer_size!r}")
        return partial(RangedS3Reader, buffer_size=buffer_size)

    @staticmethod
    def dcp_optimized(max_gap_size: Union[int, float] = DEFAULT_MAX_GAP_SIZE) -> DCPOptimizedConstructor:
        """A constructor for PyTorch Distributed Checkpoint loads (S3StorageReader's default): a data
        file is read by fetching only the byte ranges the load plan reads, in offset order.

        ``max_gap_size``: planned ranges at most this many bytes apart share one request (32 MiB
        by default; ``float("inf")`` puts all of a file's ranges in one request, 0 none together).
        Objects without planned ranges (e.g. ``.metadata``) are read sequentially. A negative or
        non-numeric ``max_gap_size`` raises ValueError."""
        return DCPOptimizedConstructor(max_gap_size=max_gap_size)

    @staticmethod
    def default() -> S3ReaderConstructorProtocol:
        """The constructor used when none is given: :meth:`sequential`."""
        return S3ReaderConstructor.sequential()

    @staticmethod
    def get_reader_type_string(constructor: Optional[S3ReaderConstructorProtocol]) -> str:
        """The name of the reader ``constructor`` makes: ``"sequential"`` (also for None),
        ``"range_based"`` or ``"dcp_optimized"``; for a constructor of your own, its ``reader_type``
        attribute, or ``"unknown"``. The name is sent in the user agent of the requests."""
        if constructor is None:
            return "sequential"
        if isinstance(constructor, DCPOptimizedConstructor):
            return "dcp_optimized"
        func = getattr(constructor, "func", None)
        if func is RangedS3Reader:
            return "range_based"
        if func is SequentialS3Reader:
            return "sequential"
        return getattr(constructor, "reader_type", "unknown")
