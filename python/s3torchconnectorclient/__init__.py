"""Compatibility with code written for the original package, whose native client lived here.

``from s3torchconnectorclient import S3Exception`` and ``LOG_TRACE`` keep working unchanged, and
so do the imports from ``s3torchconnectorclient._mountpoint_s3_client``.
"""

from s3torchconnector import S3Exception, __version__
from s3torchconnector._logging import TRACE as LOG_TRACE  # importing it registers the "TRACE" level name

__all__ = ["LOG_TRACE", "S3Exception", "__version__"]
