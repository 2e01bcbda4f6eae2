"""ListObjectStream: the pages of one ListObjectsV2 listing, fetched as the iteration reaches them."""

from typing import Optional

from .object_info import ListObjectResult, ObjectInfo


class ListObjectStream:
    """Iterates over ``ListObjectResult`` pages; each page is requested only when it is reached.

    Where it stands (``continuation_token``, ``complete``) is plain state: a stream pickled into a
    DataLoader worker goes on from the same page, with the worker's own native client.
    """

    def __init__(
        self,
        client,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = 1000,
        continuation_token: Optional[str] = None,
        complete: bool = False,
    ):
        self._client = client  # an S3Client: picklable, unlike the native client it builds per process
        self.bucket = bucket
        self.prefix = prefix
        self.delimiter = delimiter
        self.max_keys = max_keys
        self.continuation_token = continuation_token
        self.complete = complete

    @staticmethod
    def _from_state(
        client,
        bucket: str,
        prefix: str,
        delimiter: str,
        max_keys: int,
        continuation_token: Optional[str],
        complete: bool,
    ) -> "ListObjectStream":
        return ListObjectStream(client, bucket, prefix, delimiter, max_keys, continuation_token, complete)

    def __iter__(self) -> "ListObjectStream":
        return self

    def __next__(self) -> ListObjectResult:
        if self.complete:
            raise StopIteration
        page = self._client._client.list_objects(
            self.bucket, self.prefix, self.delimiter, self.max_keys, self.continuation_token or ""
        )
        self.continuation_token = page.next_continuation_token or None
        self.complete = self.continuation_token is None
        return ListObjectResult(
            [ObjectInfo(o.key, o.etag, o.size, o.last_modified, o.storage_class) for o in page.objects],
            list(page.common_prefixes),
        )
