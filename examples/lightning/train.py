"""Train a small Lightning model for 2 epochs, checkpointing every epoch to S3, then resume from
the last checkpoint and train one more epoch.

With no arguments it runs against an embedded local S3 server (moto, on 127.0.0.1). Point it at
any S3 with --endpoint/--bucket/--prefix/--region (real S3: leave --endpoint out).

Checkpoints are written, read and deleted by S3LightningCheckpoint. Lightning's ModelCheckpoint
also looks at its s3:// directory through fsspec, which needs s3fs (pip install s3fs); without
s3fs this example saves each epoch with trainer.save_checkpoint instead.
"""

import argparse
import os
import pathlib
import sys

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from s3torchconnector._s3client import S3Client
from s3torchconnector.lightning import S3LightningCheckpoint

# The examples share one helper for the embedded server.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from local_s3 import start_local_s3  # noqa: E402


class Classifier(L.LightningModule):
    def __init__(self, features: int = 16, classes: int = 4):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(features, 64), torch.nn.ReLU(), torch.nn.Linear(64, classes))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class SaveEveryEpoch(Callback):
    """Used when s3fs is missing: saves <dirpath>/epoch=N.ckpt through the checkpoint plugin."""

    def __init__(self, dirpath: str):
        self.dirpath = dirpath.rstrip("/")

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.save_checkpoint(f"{self.dirpath}/epoch={trainer.current_epoch}.ckpt")


class ReportStart(Callback):
    def on_train_start(self, trainer, pl_module):
        self.epoch = trainer.current_epoch
        self.weights = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


def make_loader() -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2048, 16, generator=generator)
    y = (x[:, :4].argmax(dim=1)).long()  # a learnable rule
    return DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=generator)


def have_s3fs() -> bool:
    try:
        import s3fs  # noqa: F401
    except ImportError:
        return False
    return True


def trainer(max_epochs: int, root: str, plugin, callbacks=()) -> L.Trainer:
    checkpoints = f"{root}checkpoints"
    if have_s3fs():
        saving = ModelCheckpoint(dirpath=checkpoints, filename="{epoch}", every_n_epochs=1, save_top_k=-1)
    else:
        # Lightning's own checkpointing (and a default_root_dir in S3) would need s3fs.
        saving, root = SaveEveryEpoch(checkpoints), None
    return L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        default_root_dir=root,
        plugins=[plugin],
        callbacks=[saving, *callbacks],
        enable_checkpointing=have_s3fs(),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--endpoint", help="S3 endpoint URL; without it (and without --bucket) a local server is started"
    )
    parser.add_argument("--bucket", help="bucket to write to (default: a local server's 'lightning-example')")
    parser.add_argument("--prefix", default="lightning-example/")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()

    if args.bucket is None:
        args.bucket = "lightning-example"
        args.endpoint = start_local_s3(args.bucket)
    if args.endpoint:
        os.environ.setdefault("AWS_ENDPOINT_URL_S3", args.endpoint)  # for s3fs, which Lightning uses to list
    prefix = args.prefix if args.prefix.endswith("/") else args.prefix + "/"
    root = f"s3://{args.bucket}/{prefix}"
    checkpoints = f"{root}checkpoints"
    plugin = S3LightningCheckpoint(args.region, endpoint=args.endpoint)
    if not have_s3fs():
        print("s3fs is not installed: saving each epoch with trainer.save_checkpoint instead of ModelCheckpoint")

    torch.manual_seed(0)
    model = Classifier()
    trainer(2, root, plugin).fit(model, make_loader())
    client = S3Client(args.region, endpoint=args.endpoint)
    keys = sorted(o.key for page in client.list_objects(args.bucket, f"{prefix}checkpoints/") for o in page.object_info)
    print("checkpoints after 2 epochs:", *keys, sep="\n  ")

    last = f"{checkpoints}/epoch=1.ckpt"
    resumed = Classifier()
    start = ReportStart()
    t = trainer(3, root, plugin, [start])
    t.fit(resumed, make_loader(), ckpt_path=last)
    saved = plugin.load_checkpoint(last)["state_dict"]
    same = all(torch.equal(saved[k], start.weights[k]) for k in saved)
    print(f"resumed from {last} at epoch {start.epoch}, weights restored: {same}; now at epoch {t.current_epoch}")
    if not same or start.epoch != 2:
        raise SystemExit("resume did not restore the checkpoint")
    keys = sorted(o.key for page in client.list_objects(args.bucket, f"{prefix}checkpoints/") for o in page.object_info)
    print("checkpoints after resuming:", *keys, sep="\n  ")


if __name__ == "__main__":
    main()
