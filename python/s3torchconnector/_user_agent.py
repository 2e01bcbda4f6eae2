"""The User-Agent our requests carry: who we are and what we run on, for S3's request logs."""

import platform
import sys
from typing import List, Optional

from ._version import __version__


class UserAgent:
    """``s3torchconnector/<version>`` plus Python, torch, OS and architecture, and any ``comments``."""

    def __init__(self, comments: Optional[List[str]] = None):
        if comments is not None and (
            not isinstance(comments, list) or not all(isinstance(c, str) for c in comments)
        ):
            raise ValueError("comments must be a list of strings")
        self._comments = comments or []

    @property
    def prefix(self) -> str:
        parts = [
            f"s3torchconnector/{__version__}",
            f"py/{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}",
            f"torch/{_torch_version()}",
            f"os/{platform.system().lower()}",
            f"md/arch#{platform.machine().lower()}",
        ]
        text = " ".join(parts)
        if self._comments:
            text += " (" + "; ".join(self._comments) + ")"
        return text


def _torch_version() -> str:
    torch = sys.modules.get("torch")
    return getattr(torch, "__version__", "unknown") if torch is not None else "unknown"
