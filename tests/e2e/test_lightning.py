"""S3LightningCheckpoint with a real Lightning Trainer against the local S3 server.

Lightning's ModelCheckpoint (and a Trainer whose default_root_dir is an s3:// URI) inspects its
directory through fsspec, which needs s3fs for s3:// URIs — as in the original connector's tests.
Those tests point s3fs at the local server through AWS_ENDPOINT_URL_S3 and are skipped without
s3fs; the plugin's own reads, writes and deletes all go through s3torchconnector.
"""

import pytest

lightning = pytest.importorskip("lightning")

import torch  # noqa: E402
from lightning.pytorch import Callback, LightningModule, Trainer  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.plugins.io import AsyncCheckpointIO  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from s3torchconnector import S3Checkpoint, S3ClientConfig, S3Exception  # noqa: E402
from s3torchconnector.lightning import S3LightningCheckpoint  # noqa: E402

BATCHES_PER_EPOCH = 4
MIB = 1024 * 1024

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*exists and is not empty",  # resuming into the directory of the first run
    "ignore:Be aware that when using `ckpt_path`",
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated",  # Lightning vs this torch
)


class TinyModule(LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(8, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


class RecordStart(Callback):
    """What the trainer holds when training (re)starts: epoch, step and weights."""

    def on_train_start(self, trainer, pl_module):
        self.epoch = trainer.current_epoch
        self.global_step = trainer.global_step
        self.weights = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


def _loader() -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8 * BATCHES_PER_EPOCH, 8, generator=generator)
    y = torch.randn(8 * BATCHES_PER_EPOCH, 2, generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=8)


def _trainer(max_epochs: int, plugin, callbacks=(), **kwargs) -> Trainer:
    return Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        plugins=[plugin],
        callbacks=list(callbacks),
        **kwargs,
    )


def _assert_same_weights(expected, actual) -> None:
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


@pytest.fixture
def s3fs_endpoint(s3, monkeypatch):
    """s3fs (used by Lightning for s3:// directories) pointed at the local server."""
    s3fs = pytest.importorskip("s3fs")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
    s3fs.S3FileSystem.clear_instance_cache()
    yield s3
    s3fs.S3FileSystem.clear_instance_cache()


def test_save_load_remove(s3):
    plugin = S3LightningCheckpoint(s3.region, endpoint=s3.endpoint)
    assert f"(lightning; {lightning.__version__})" in plugin._client.user_agent_prefix
    state = {"weights": torch.arange(12.0).reshape(3, 4), "epoch": 3, "name": "tiny"}
    uri = s3.uri("run/manual.ckpt")

    plugin.save_checkpoint(state, uri)
    assert s3.keys() == ["run/manual.ckpt"]
    loaded = plugin.load_checkpoint(uri)
    assert torch.equal(loaded["weights"], state["weights"])
    assert (loaded["epoch"], loaded["name"]) == (3, "tiny")

    # Interchangeable with S3Checkpoint both ways.
    checkpoint = S3Checkpoint(s3.region, endpoint=s3.endpoint)
    with checkpoint.reader(uri) as reader:
        assert torch.equal(torch.load(reader, weights_only=True)["weights"], state["weights"])
    with checkpoint.writer(s3.uri("run/other.ckpt")) as writer:
        torch.save({"x": torch.ones(2)}, writer)
    assert torch.equal(plugin.load_checkpoint(s3.uri("run/other.ckpt"), weights_only=True)["x"], torch.ones(2))

    plugin.remove_checkpoint(uri)
    assert s3.keys() == ["run/other.ckpt"]
    with pytest.raises(S3Exception) as error:
        plugin.load_checkpoint(uri)
    assert error.value.code == "NoSuchKey"
    with pytest.raises(TypeError, match="S3 URI"):
        plugin.save_checkpoint(state, 42)
    with pytest.raises(ValueError, match="s3://"):
        plugin.load_checkpoint("/local/path.ckpt")
    plugin.teardown()


def test_load_checkpoint_applies_map_location(s3):
    """map_location reaches torch.load: a device moves every tensor, a callable sees every storage."""
    plugin = S3LightningCheckpoint(s3.region, endpoint=s3.endpoint)
    uri = s3.uri("mapped.ckpt")
    plugin.save_checkpoint({"weights": torch.arange(6.0), "bias": torch.ones(2)}, uri)

    on_meta = plugin.load_checkpoint(uri, map_location=torch.device("meta"))
    assert {name: tensor.device.type for name, tensor in on_meta.items()} == {"weights": "meta", "bias": "meta"}

    locations = []

    def record(storage, location):
        locations.append(location)
        return storage

    loaded = plugin.load_checkpoint(uri, map_location=record)
    assert locations == ["cpu", "cpu"]
    assert torch.equal(loaded["weights"], torch.arange(6.0))


def test_s3client_config_reaches_the_client(s3):
    """The plugin's uploads use the given S3ClientConfig: with 5 MiB parts an 11 MiB checkpoint is
    stored in three parts (the default 8 MiB parts would make two), as its ETag says."""
    plugin = S3LightningCheckpoint(s3.region, endpoint=s3.endpoint, s3client_config=S3ClientConfig(part_size=5 * MIB))
    state = {"weights": torch.zeros(11 * MIB // 4)}  # 11 MiB of float32, plus torch.save framing
    plugin.save_checkpoint(state, s3.uri("parts.ckpt"))
    etag = s3.boto3.head_object(Bucket=s3.bucket, Key="parts.ckpt")["ETag"]
    assert etag.endswith('-3"'), etag
    assert torch.equal(plugin.load_checkpoint(s3.uri("parts.ckpt"))["weights"], state["weights"])


def test_failed_save_leaves_no_object(s3):
    plugin = S3LightningCheckpoint(s3.region, endpoint=s3.endpoint)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle this")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        plugin.save_checkpoint({"big": torch.zeros(1024), "bad": Unpicklable()}, s3.uri("broken.ckpt"))
    assert s3.keys() == []
    assert s3.multipart_uploads() == []


def test_trainer_saves_each_epoch_and_resumes(s3fs_endpoint):
    s3 = s3fs_endpoint
    plugin = S3LightningCheckpoint(s3.region, endpoint=s3.endpoint)
    callback = ModelCheckpoint(dirpath=s3.uri("run/ckpts"), filename="{epoch}", every_n_epochs=1, save_top_k=-1)
    torch.manual_seed(0)
    model = TinyModule()
    trainer = _trainer(2, plugin, [callback], default_root_dir=s3.uri("run"))
    trainer.fit(model, _loader())

    assert sorted(s3.keys()) == ["run/ckpts/epoch=0.ckpt", "run/ckpts/epoch=1.ckpt"]
    saved = plugin.load_checkpoint(s3.uri("run/ckpts/epoch=1.ckpt"))
    assert saved["epoch"] == 1 and saved["global_step"] == 2 * BATCHES_PER_EPOCH
    _assert_same_weights(model.state_dict(), saved["state_dict"])

    # Resume from the S3 checkpoint into a fresh model: weights and progress come back.
    torch.manual_seed(1)
    resumed = TinyModule()
    start = RecordStart()
    callback = ModelCheckpoint(dirpath=s3.uri("run/ckpts"), filename="{epoch}", every_n_epochs=1, save_top_k=-1)
    trainer = _trainer(3, plugin, [callback, start], default_root_dir=s3.uri("run"))
    trainer.fit(resumed, _loader(), ckpt_path=s3.uri("run/ckpts/epoch=1.ckpt"))
    assert start.epoch == 2
    assert start.global_step == 2 * BATCHES_PER_EPOCH
    _assert_same_weights(saved["state_dict"], start.weights)
    assert trainer.current_epoch == 3
    assert "run/ckpts/epoch=2.ckpt" in s3.keys()


def test_save_top_k_removes_old_checkpoints_from_s3(s3fs_endpoint):
    s3 = s3fs_endpoint
    plugin = S3LightningCheckpoint(s3.region, endpoint=s3.endpoint)
    removed = []
    remove = plugin.remove_checkpoint

    def spy(path):
        removed.append(path)
        remove(path)

    plugin.remove_checkpoint = spy
    callback = ModelCheckpoint(
        dirpath=s3.uri("topk"), filename="{epoch}", every_n_epochs=1, save_top_k=1, monitor="epoch", mode="max"
    )
    trainer = _trainer(3, plugin, [callback])
    trainer.fit(TinyModule(), _loader())

    assert removed == [s3.uri("topk/epoch=0.ckpt"), s3.uri("topk/epoch=1.ckpt")]
    assert s3.keys() == ["topk/epoch=2.ckpt"]
    assert callback.best_model_path == s3.uri("topk/epoch=2.ckpt")


def test_async_checkpoint_io(s3fs_endpoint):
    s3 = s3fs_endpoint
    plugin = S3LightningCheckpoint(s3.region, endpoint=s3.endpoint)
    async_plugin = AsyncCheckpointIO(plugin)
    callback = ModelCheckpoint(
        dirpath=s3.uri("async"), filename="{epoch}", every_n_epochs=1, save_top_k=1, monitor="epoch", mode="max"
    )
    torch.manual_seed(0)
    model = TinyModule()
    trainer = _trainer(2, async_plugin, [callback], default_root_dir=s3.uri("async"))
    trainer.fit(model, _loader())
    async_plugin.teardown()  # waits for the last save (the trainer's teardown already did)

    assert s3.keys() == ["async/epoch=1.ckpt"]
    assert s3.multipart_uploads() == []
    saved = plugin.load_checkpoint(s3.uri("async/epoch=1.ckpt"))
    _assert_same_weights(model.state_dict(), saved["state_dict"])

    # Resume through the async wrapper too (loads are synchronous).
    start = RecordStart()
    trainer = _trainer(
        3,
        AsyncCheckpointIO(S3LightningCheckpoint(s3.region, endpoint=s3.endpoint)),
        [start],
        enable_checkpointing=False,
    )
    trainer.fit(TinyModule(), _loader(), ckpt_path=s3.uri("async/epoch=1.ckpt"))
    assert start.epoch == 2
    _assert_same_weights(saved["state_dict"], start.weights)


def test_trainer_save_and_resume_without_fsspec_paths(s3, tmp_path):
    """Without s3fs: trainer.save_checkpoint and ckpt_path with S3 URIs go through the plugin alone."""
    plugin = S3LightningCheckpoint(s3.region, endpoint=s3.endpoint)
    torch.manual_seed(0)
    model = TinyModule()
    trainer = _trainer(2, plugin, enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(model, _loader())
    uri = s3.uri("manual/end.ckpt")
    trainer.save_checkpoint(uri)
    assert s3.keys() == ["manual/end.ckpt"]

    seen = []
    load = plugin.load_checkpoint

    def spy(path, map_location=None, weights_only=None):
        seen.append(weights_only)
        return load(path, map_location=map_location, weights_only=weights_only)

    plugin.load_checkpoint = spy
    start = RecordStart()
    trainer = _trainer(3, plugin, [start], enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(TinyModule(), _loader(), ckpt_path=uri, weights_only=False)
    assert seen == [False]  # Lightning's weights_only reaches the plugin
    assert start.epoch == 2 and start.global_step == 2 * BATCHES_PER_EPOCH
    _assert_same_weights(model.state_dict(), start.weights)
