"""Where each rank's DCP data files go under the checkpoint path.

S3 scales request rates per key prefix, so a many-rank save that puts every file under one prefix
can be throttled. A strategy maps a rank to a prefix placed before the file name
``<prefix><n>.distcp``:

- ``DefaultPrefixStrategy``: ``__<rank>_`` (PyTorch's own layout: ``__0_0.distcp``)
- ``BinaryPrefixStrategy``: ``<reversed binary rank>/[epoch_<n>/]__<rank>_``, e.g.
  ``1000000000/__1_0.distcp``
- ``HexPrefixStrategy``: the same in base 16
- ``RoundRobinPrefixStrategy``: ``<user prefix>/[epoch_<n>/]__<rank>_``, the prefixes taken in turn

The numeric prefixes are written least significant digit first, so consecutive ranks differ in
the first character and spread over S3's partitions.
"""

from abc import ABC, abstractmethod
from typing import List, Optional


class S3PrefixStrategyBase(ABC):
    """Maps a rank to the prefix of its data files. Call it with the rank."""

    def __call__(self, rank: int) -> str:
        return self.generate_prefix(rank)

    @abstractmethod
    def generate_prefix(self, rank: int) -> str:
        """The prefix for ``rank``'s files, relative to the checkpoint path."""


class DefaultPrefixStrategy(S3PrefixStrategyBase):
    """``__<rank>_``: every file directly under the checkpoint path, as PyTorch lays them out."""

    def generate_prefix(self, rank: int) -> str:
        return f"__{rank}_"


def _check_epoch(epoch_num) -> None:
    if epoch_num is not None and (isinstance(epoch_num, bool) or not isinstance(epoch_num, int)):
        raise ValueError(f"epoch_num must be None or an int, got {epoch_num!r}")


def _epoch_part(epoch_num: Optional[int]) -> str:
    return "" if epoch_num is None else f"epoch_{epoch_num}/"


class NumericPrefixStrategy(S3PrefixStrategyBase):
    """Prefixes that are the rank's digits in ``base``, reversed and zero-padded.

    Args:
        base: 2 for binary, 16 for hexadecimal.
        epoch_num: when set, ``epoch_<n>/`` follows the numeric prefix.
        min_prefix_length: the prefixes are at least this long (more digits are used when the
            prefix count needs them). 10 by default.
        prefix_count: how many distinct prefixes to use; ranks beyond it share them in turn. The
            world size of the initialised process group by default, else 1.
    """

    def __init__(
        self,
        base: int,
        epoch_num: Optional[int] = None,
        min_prefix_length: int = 10,
        prefix_count: Optional[int] = None,
        *,
        min_prefix_len: Optional[int] = None,
    ):
        if min_prefix_len is not None:  # the short spelling is accepted too
            min_prefix_length = min_prefix_len
        if base not in (2, 16):
            raise ValueError(f"base must be 2 or 16, got {base!r}")
        if isinstance(min_prefix_length, bool) or not isinstance(min_prefix_length, int) or min_prefix_length < 1:
            raise ValueError(f"min_prefix_length must be a positive int, got {min_prefix_length!r}")
        _check_epoch(epoch_num)
        if prefix_count is not None and (
            isinstance(prefix_count, bool) or not isinstance(prefix_count, int) or prefix_count < 1
        ):
            raise ValueError(f"prefix_count must be a positive int, got {prefix_count!r}")
        self.base = base
        self.epoch_num = epoch_num
        self.min_prefix_len = min_prefix_length
        self.prefix_count = prefix_count if prefix_count is not None else _world_size()
        self.prefix_map = self._generate_prefix_map()

    def generate_prefix(self, rank: int) -> str:
        return f"{self.prefix_map[rank % len(self.prefix_map)]}/{_epoch_part(self.epoch_num)}__{rank}_"

    def _generate_prefix_map(self) -> List[str]:
        digits = 1
        while self.base**digits < self.prefix_count:
            digits += 1
        length = max(digits, self.min_prefix_len)
        return [self._format_number(i, length)[::-1] for i in range(self.prefix_count)]

    def _format_number(self, number: int, length: int) -> str:
        return format(number, f"0{length}{'b' if self.base == 2 else 'x'}")


class _FixedBasePrefixStrategy(NumericPrefixStrategy):
    """A numeric strategy whose base the class fixes (``_BASE``), with the original's arguments."""

    _BASE: int

    def __init__(
        self,
        epoch_num: Optional[int] = None,
        min_prefix_length: int = 10,
        prefix_count: Optional[int] = None,
        *,
        min_prefix_len: Optional[int] = None,
    ):
        super().__init__(self._BASE, epoch_num, min_prefix_length, prefix_count, min_prefix_len=min_prefix_len)


class BinaryPrefixStrategy(_FixedBasePrefixStrategy):
    """Binary prefixes: rank 0 -> ``0000000000/``, rank 1 -> ``1000000000/``, rank 2 -> ``0100000000/``."""

    _BASE = 2


class HexPrefixStrategy(_FixedBasePrefixStrategy):
    """Hexadecimal prefixes: rank 1 -> ``1000000000/``, rank 26 -> ``a100000000/``."""

    _BASE = 16


class RoundRobinPrefixStrategy(S3PrefixStrategyBase):
    """Ranks spread over prefixes you choose: rank r goes under ``user_prefixes[r % len]``."""

    def __init__(self, user_prefixes: List[str], epoch_num: Optional[int] = None):
        if isinstance(user_prefixes, str) or not user_prefixes:
            raise ValueError("user_prefixes must be a non-empty list of strings")
        if not all(isinstance(p, str) and p for p in user_prefixes):
            raise ValueError(f"user_prefixes must be non-empty strings, got {user_prefixes!r}")
        _check_epoch(epoch_num)
        self.user_prefixes = list(user_prefixes)
        self.epoch_num = epoch_num

    def generate_prefix(self, rank: int) -> str:
        prefix = self.user_prefixes[rank % len(self.user_prefixes)]
        return f"{prefix}/{_epoch_part(self.epoch_num)}__{rank}_"


def _world_size() -> int:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size()
    except ImportError:
        pass
    return 1
