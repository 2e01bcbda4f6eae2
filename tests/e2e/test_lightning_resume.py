"""Lightning over a shuffled, sharded S3IterableDataset read by a StatefulDataLoader (2 workers),
checkpointing to S3 through S3LightningCheckpoint, stopped mid-epoch by a failure and resumed in
a new process with ``trainer.fit(model, ckpt_path="s3://...")``.

What Lightning 2.x does with a StatefulDataLoader (lightning.pytorch.loops.fit_loop, fetchers):

- ``_FitLoop.on_save_checkpoint`` stores ``loader.state_dict()`` of every train loader that has
  ``state_dict``/``load_state_dict`` (``loops.fit_loop.state_dict.combined_loader`` in the
  checkpoint); when a run restarts mid-epoch, ``_FitLoop.setup_data`` loads it into the new loader
  before making its iterator. That state holds each worker's position in the epoch's order.
- With ``training_step(self, dataloader_iter)`` (``_DataLoaderIterDataFetcher``) a batch is taken
  only when the step asks for it: the resumed run trains on exactly the rest of the epoch.
- With ``training_step(self, batch, batch_idx)`` and a loader without a length (any
  IterableDataset), ``_PrefetchDataFetcher`` holds one batch ahead of the step, so the checkpoint
  after step k holds the loader's state after k + 1 batches: the resumed run never trains on the
  batch that was prefetched when the run stopped. Nothing is repeated; the order is kept.
- ``FitLoop.setup_data`` makes a (re)started run's first iterator before ``on_train_epoch_start``:
  the dataset's epoch is set in ``train_dataloader()`` too, or a run resumed from an end-of-epoch
  checkpoint reads its first epoch in epoch 0's order.

Each phase runs in a fresh interpreter (SCRIPT); the moto server stands for S3, and s3fs serves
Lightning's own s3:// directory checks (pointed at moto by AWS_ENDPOINT_URL_S3).
"""

import json
import struct
import uuid

import pytest
from python_script import run_python

from s3torchconnector import S3IterableDataset
from s3torchconnector.lightning import S3LightningCheckpoint

N_OBJECTS = 24
BATCH = 2
STEPS_PER_EPOCH = N_OBJECTS // BATCH
STOP_AFTER = 5  # the step after which a checkpoint is written and the run then fails
EPOCHS = 2
SEED = 1234
TIMEOUT = 240

SCRIPT = """
    import json, os, sys
    endpoint, bucket, phase, out = sys.argv[1:5]
    BATCH, STOP_AFTER, EPOCHS, SEED = map(int, sys.argv[5:9])
    os.environ["AWS_ENDPOINT_URL_S3"] = endpoint  # s3fs, for Lightning's s3:// directory checks

    import torch
    from lightning.pytorch import Callback, LightningModule, Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torchdata.stateful_dataloader import StatefulDataLoader
    from s3torchconnector import S3IterableDataset
    from s3torchconnector.lightning import S3LightningCheckpoint

    REGION = "us-east-1"


    def sample(reader):
        # Object train/NNN holds the number NNN four times: the model checks what it trains on.
        number = int(reader.key.rsplit("/", 1)[1])
        return number, torch.frombuffer(bytearray(reader.read()), dtype=torch.float32)


    class Model(LightningModule):
        def __init__(self, dataset):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)
            self.dataset = dataset
            self.seen = []  # [epoch, [sample numbers]] for each training step

        def train_dataloader(self):
            # Lightning makes a (re)started run's first iterator before on_train_epoch_start.
            self.dataset.set_epoch(self.trainer.fit_loop.epoch_progress.current.processed)
            return StatefulDataLoader(self.dataset, batch_size=BATCH, num_workers=2)

        def on_train_epoch_start(self):
            self.dataset.set_epoch(self.current_epoch)

        def train_on(self, batch):
            numbers, x = batch
            assert torch.equal(x, numbers.float()[:, None].expand(-1, 4)), numbers
            self.seen.append([self.current_epoch, numbers.tolist()])
            return self.layer(x).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)


    class BatchModel(Model):
        def training_step(self, batch, batch_idx):
            return self.train_on(batch)


    class IterModel(Model):
        def training_step(self, dataloader_iter):
            batch, _, _ = next(dataloader_iter)
            return self.train_on(batch)


    class Preempted(Exception):
        pass


    class FailAfterStop(Callback):
        # Fails as the step after STOP_AFTER starts, once that step's checkpoint is written.
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == STOP_AFTER:
                raise Preempted()


    def fit(run, model_class, fail=False, ckpt_path=None):
        dataset = S3IterableDataset.from_prefix(
            f"s3://{bucket}/train/", region=REGION, endpoint=endpoint, transform=sample,
            shuffle=True, seed=SEED, enable_sharding=True,
        )
        callbacks = [
            ModelCheckpoint(dirpath=f"s3://{bucket}/{run}/steps", filename="{step}", save_top_k=-1,
                            every_n_train_steps=STOP_AFTER, save_on_train_epoch_end=False),
            ModelCheckpoint(dirpath=f"s3://{bucket}/{run}/epochs", filename="{epoch}", save_top_k=-1,
                            every_n_epochs=1),
        ]
        if fail:
            callbacks.append(FailAfterStop())
        trainer = Trainer(
            accelerator="cpu", max_epochs=EPOCHS, logger=False, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=f"s3://{bucket}/{run}",
            plugins=[S3LightningCheckpoint(REGION, endpoint=endpoint)], callbacks=callbacks,
        )
        model = model_class(dataset)
        try:
            trainer.fit(model, ckpt_path=ckpt_path)
        except Preempted:
            assert fail
        return model.seen


    if phase == "first":
        seen = {
            "uninterrupted": fit("uninterrupted", BatchModel),
            "batch": fit("batch", BatchModel, fail=True),
            "dataloader_iter": fit("dataloader_iter", IterModel, fail=True),
        }
    else:
        step = f"steps/step={STOP_AFTER}.ckpt"
        seen = {
            "batch": fit("batch", BatchModel, ckpt_path=f"s3://{bucket}/batch/{step}"),
            "dataloader_iter": fit("dataloader_iter", IterModel, ckpt_path=f"s3://{bucket}/dataloader_iter/{step}"),
            "epoch_end": fit("epoch_end", BatchModel, ckpt_path=f"s3://{bucket}/uninterrupted/epochs/epoch=0.ckpt"),
        }
    with open(out, "w") as file:
        json.dump(seen, file)
"""


def _run_phase(s3, tmp_path, phase: str) -> dict:
    """Runs SCRIPT's phase in a new interpreter; what each run's training steps saw, by run."""
    out = tmp_path / f"{phase}.json"
    result = run_python(
        SCRIPT,
        s3.endpoint,
        s3.bucket,
        phase,
        out,
        BATCH,
        STOP_AFTER,
        EPOCHS,
        SEED,
        timeout=TIMEOUT,
        path=tmp_path / f"{phase}.py",
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def runs(s3_endpoint, tmp_path_factory):
    """First process: an uninterrupted run of 2 epochs, and one run per training_step signature
    that fails after step 5. Second process: each failed run resumed from its step-5 checkpoint,
    and a run resumed from the uninterrupted run's end-of-epoch-0 checkpoint."""
    from local_s3 import LocalS3  # the session's server, with a bucket shared by this module's tests

    s3 = LocalS3(s3_endpoint, f"resume-{uuid.uuid4().hex[:12]}")
    s3.boto3.create_bucket(Bucket=s3.bucket)
    for number in range(N_OBJECTS):
        s3.put(f"train/{number:03d}", struct.pack("4f", *[number] * 4))
    tmp_path = tmp_path_factory.mktemp("lightning_resume")
    first = _run_phase(s3, tmp_path, "first")
    resumed = _run_phase(s3, tmp_path, "resume")
    return s3, first, resumed


def _epoch(seen, epoch) -> list:
    return [numbers for e, numbers in seen if e == epoch]


def _numbers(batches) -> list:
    return [n for batch in batches for n in batch]


def test_uninterrupted_run_reads_every_sample_once_per_epoch_in_a_new_order(runs):
    _, first, _ = runs
    epochs = [_epoch(first["uninterrupted"], e) for e in range(EPOCHS)]
    for batches in epochs:
        assert len(batches) == STEPS_PER_EPOCH
        assert sorted(_numbers(batches)) == list(range(N_OBJECTS))
    assert epochs[0] != epochs[1]
    for run in ("batch", "dataloader_iter"):  # the failed runs trained on the same first steps
        assert first[run] == first["uninterrupted"][:STOP_AFTER]


def test_checkpoint_in_s3_holds_the_stateful_dataloader_state(runs):
    """The step-5 checkpoints hold the loader's state: both workers' positions in epoch 0, after
    5 batches with dataloader_iter, after 6 (one prefetched) with a plain training_step."""
    s3, _, _ = runs
    plugin = S3LightningCheckpoint(s3.region, endpoint=s3.endpoint)
    for run, batches_taken in (("dataloader_iter", STOP_AFTER), ("batch", STOP_AFTER + 1)):
        checkpoint = plugin.load_checkpoint(s3.uri(f"{run}/steps/step={STOP_AFTER}.ckpt"), weights_only=False)
        assert checkpoint["global_step"] == STOP_AFTER
        loader_states = checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]
        assert len(loader_states) == 1  # the one StatefulDataLoader's state_dict()
        merged = S3IterableDataset.elastic_state(loader_states)  # finds each worker's position
        assert merged["epoch"] == 0
        assert merged["settings"] == {"shuffle": True, "seed": SEED, "shuffle_buffer_size": 0, "shard_format": None}
        assert len(merged["rounds"]) == 1 and len(merged["rounds"][0]) == 2  # 2 workers' shares
        assert sum(merged["rounds"][0]) == batches_taken * BATCH, run


def test_resume_with_dataloader_iter_trains_on_exactly_the_rest(runs):
    """No repeat, no skip, the uninterrupted run's order, then the next epoch as it was."""
    _, first, resumed = runs
    assert first["dataloader_iter"] + resumed["dataloader_iter"] == first["uninterrupted"]


def test_resume_with_a_batch_training_step_misses_only_the_prefetched_batch(runs):
    """The resumed run continues after the batch Lightning had prefetched (not trained on) when
    the checkpoint was written; the rest, and the next epoch, are the uninterrupted run's."""
    _, first, resumed = runs
    uninterrupted = first["uninterrupted"]
    assert resumed["batch"] == uninterrupted[STOP_AFTER + 1 :]
    trained = _numbers(_epoch(first["batch"], 0) + _epoch(resumed["batch"], 0))
    assert len(trained) == len(set(trained)) == N_OBJECTS - BATCH  # each at most once in epoch 0
    assert set(range(N_OBJECTS)) - set(trained) == set(uninterrupted[STOP_AFTER][1])


def test_resume_from_an_end_of_epoch_checkpoint_reads_the_next_epoch(runs):
    """With the epoch also set in train_dataloader(); without it, this run reads epoch 0's order."""
    _, first, resumed = runs
    assert resumed["epoch_end"] == [step for step in first["uninterrupted"] if step[0] == 1]
