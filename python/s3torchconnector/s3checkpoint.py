"""S3Checkpoint: torch.save and torch.load straight to and from S3 URIs."""

import dataclasses
from typing import Optional

from ._s3client import S3Client, S3ClientConfig
from ._s3uri import parse_s3_uri
from ._user_agent import UserAgent
from .s3reader import S3Reader, S3ReaderConstructor
from .s3reader.protocol import S3ReaderConstructorProtocol
from .s3writer import S3Writer


class S3Checkpoint:
    """``with checkpoint.writer(uri) as f: torch.save(state, f)`` and
    ``with checkpoint.reader(uri) as f: torch.load(f)``.
    """

    def __init__(
        self,
        region: str,
        endpoint: Optional[str] = None,
        s3client_config: Optional[S3ClientConfig] = None,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
    ):
        self.region = region
        self.endpoint = endpoint
        self._reader_constructor = reader_constructor or S3ReaderConstructor.default()
        config = s3client_config or S3ClientConfig()
        if config.validate_checksums is None:  # a corrupt checkpoint costs a run: verify by default
            config = dataclasses.replace(config, validate_checksums=True)
        self._client = S3Client(
            region,
            endpoint=endpoint,
            user_agent=UserAgent(["checkpoint"]),
            s3client_config=config,
        )

    def metrics(self) -> dict:
        """What this process's checkpoint requests did (see ``S3Client.metrics``)."""
        return self._client.metrics()

    def reader(self, s3_uri: str) -> S3Reader:
        """A reader of the checkpoint at ``s3_uri`` (``s3://bucket/key``), to pass to ``torch.load``:
        ``with checkpoint.reader(uri) as f: torch.load(f)``. The object is read with this checkpoint's
        ``reader_constructor``, its downloads checked against the upload's checksum unless the
        config turned ``validate_checksums`` off. A malformed URI raises ValueError at once; a missing
        object raises NoSuchKeyError (an S3Exception and a FileNotFoundError) at the first read."""
        bucket, key = parse_s3_uri(s3_uri)
        return self._client.get_object(bucket, key, reader_constructor=self._reader_constructor)

    def writer(self, s3_uri: str) -> S3Writer:
        """A writer to ``s3_uri`` (``s3://bucket/key``), to pass to ``torch.save``:
        ``with checkpoint.writer(uri) as f: torch.save(state, f)``. The object appears, whole, when
        the ``with`` block ends; an exception in it leaves no object and no upload behind (see
        S3Writer). A malformed URI raises ValueError at once; a failed upload raises S3Exception."""
        bucket, key = parse_s3_uri(s3_uri)
        return self._client.put_object(bucket, key)
