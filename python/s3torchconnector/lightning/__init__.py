"""PyTorch Lightning checkpoints on S3: ``Trainer(plugins=[S3LightningCheckpoint(region)])``."""

try:
    import lightning  # noqa: F401
    from lightning.pytorch.plugins.io import CheckpointIO  # noqa: F401
except ImportError as _error:
    raise ImportError(
        f's3torchconnector.lightning needs PyTorch Lightning ({_error}): pip install "s3torchconnector[lightning]"'
    ) from _error

from .s3_lightning_checkpoint import S3LightningCheckpoint

__all__ = ["S3LightningCheckpoint"]
