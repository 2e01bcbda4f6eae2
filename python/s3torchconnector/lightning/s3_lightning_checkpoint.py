"""S3LightningCheckpoint: a Lightning CheckpointIO that saves to, loads from and removes S3 URIs."""

import inspect
from typing import Any, Dict, Optional

import lightning
import torch
from lightning.pytorch.plugins.io import CheckpointIO

from .._s3client import S3Client, S3ClientConfig
from .._s3uri import parse_s3_uri
from .._user_agent import UserAgent


def _lightning_passes_weights_only() -> bool:
    """Lightning 2.6 added ``weights_only`` to ``CheckpointIO.load_checkpoint``."""
    try:
        return "weights_only" in inspect.signature(CheckpointIO.load_checkpoint).parameters
    except (TypeError, ValueError):
        return False


_WEIGHTS_ONLY_FROM_LIGHTNING = _lightning_passes_weights_only()


class S3LightningCheckpoint(CheckpointIO):
    """Checkpoints of a Lightning ``Trainer`` in S3, streamed without local files.

    Pass it to the Trainer (``plugins=[S3LightningCheckpoint("us-east-1")]``, optionally wrapped
    in ``AsyncCheckpointIO``) and give ``s3://bucket/prefix`` paths as ``default_root_dir``,
    ``ModelCheckpoint(dirpath=...)`` and ``ckpt_path``.

    Args:
        region: the bucket's region.
        s3client_config: settings of the S3 client.
        endpoint: a custom S3 endpoint URL.
    """

    def __init__(
        self,
        region: str,
        s3client_config: Optional[S3ClientConfig] = None,
        endpoint: Optional[str] = None,
    ):
        self.region = region
        self._client = S3Client(
            region,
            endpoint=endpoint,
            user_agent=UserAgent(["lightning", lightning.__version__]),
            s3client_config=s3client_config,
        )

    def metrics(self) -> dict:
        """What this process's checkpoint requests did (see ``S3Client.metrics``)."""
        return self._client.metrics()

    def save_checkpoint(
        self,
        checkpoint: Dict[str, Any],
        path: str,  # type: ignore[override]
        storage_options: Optional[Any] = None,
    ) -> None:
        """``torch.save`` of the checkpoint straight into an upload to ``path`` (an S3 URI). The
        object appears only once it is complete; a failure leaves none behind.

        Raises:
            S3Exception: the upload failed.
        """
        bucket, key = self._parse(path)
        with self._client.put_object(bucket, key) as writer:
            torch.save(checkpoint, writer)

    def load_checkpoint(
        self,
        path: str,  # type: ignore[override]
        map_location: Optional[Any] = None,
        weights_only: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """``torch.load`` of the checkpoint at ``path`` (an S3 URI).

        Args:
            path: the checkpoint's S3 URI.
            map_location: how to remap storage locations, as for ``torch.load``.
            weights_only: as for ``torch.load``. ``None`` leaves the choice to the installed
                Lightning: PyTorch's default from Lightning 2.6 on (which passes it through from
                ``Trainer.fit(..., weights_only=...)``), ``False`` before, as Lightning itself does.

        Raises:
            S3Exception: the object could not be read (e.g. NoSuchKey).
        """
        bucket, key = self._parse(path)
        if weights_only is None and not _WEIGHTS_ONLY_FROM_LIGHTNING:
            weights_only = False
        with self._client.get_object(bucket, key) as reader:
            return torch.load(reader, map_location=map_location, weights_only=weights_only)

    def remove_checkpoint(self, path: str) -> None:  # type: ignore[override]
        """Deletes the checkpoint object at ``path`` (an S3 URI).

        Raises:
            S3Exception: the delete failed.
        """
        bucket, key = self._parse(path)
        self._client.delete_object(bucket, key)

    def teardown(self) -> None:
        """Nothing to release: uploads finish within ``save_checkpoint``."""

    @staticmethod
    def _parse(path) -> tuple:
        if not isinstance(path, str):
            raise TypeError(
                f"{type(path).__name__!r} is not a supported type for 'path': give an S3 URI string "
                "such as 's3://bucket/checkpoints/epoch=0.ckpt'"
            )
        return parse_s3_uri(path)
