"""S3BucketKeyData: one object a dataset reads. Its own module, as in the original, so that
``from s3torchconnector._s3bucket_key_data import S3BucketKeyData`` and pickles naming this
path keep working."""

from typing import NamedTuple, Optional

from ._s3client.object_info import ObjectInfo


class S3BucketKeyData(NamedTuple):
    """Read-only information about an object stored in S3; ``object_info`` when it was listed."""

    bucket: str
    key: str
    object_info: Optional[ObjectInfo] = None
