"""The User-Agent our requests carry: who we are and what we run on, for S3's request logs."""

import platform
from typing import List, Optional

from ._version import __version__


class UserAgent:
    """The default prefix (``get_default_prefix``) plus any ``comments`` in parentheses.

    The prefix has the original's fields in the original's order, so request logs and dashboards
    that parse it keep working.
    """

    @staticmethod
    def get_default_prefix() -> str:
        """``s3torchconnector/<version> ua/2.1 os/<os>#<release> lang/python#<version>
        md/arch#<arch> md/pytorch#<version>``, without comments."""
        import torch  # already imported by the package; kept local so this module stays light

        os_name = platform.system().lower()
        parts = [
            f"s3torchconnector/{__version__}",
            "ua/2.1",
            f"os/{'macos' if os_name == 'darwin' else os_name}#{platform.release()}",
            f"lang/python#{platform.python_version()}",
            f"md/arch#{platform.machine().lower()}",
            f"md/pytorch#{torch.__version__}",
        ]
        return " ".join(parts)

    def __init__(self, comments: Optional[List[str]] = None):
        if comments is not None and (not isinstance(comments, list) or not all(isinstance(c, str) for c in comments)):
            raise ValueError("comments must be a list of strings")
        self._prefix = UserAgent.get_default_prefix()
        self._comments = comments or []

    @property
    def prefix(self) -> str:
        comments = "; ".join(filter(None, self._comments))
        return f"{self._prefix} ({comments})" if comments else self._prefix
