"""Compatibility with code written for the original package, whose native client lived here.

``from s3torchconnectorclient import S3Exception`` keeps working unchanged.
"""

from s3torchconnector import S3Exception, __version__

__all__ = ["S3Exception", "__version__"]
