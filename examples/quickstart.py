"""Train a small image classifier straight from S3, then checkpoint it to S3 and load it back.

With no arguments it runs against an embedded local S3 server (moto, on 127.0.0.1) that it
fills with a synthetic dataset. Point it at any S3 with --endpoint/--bucket/--prefix/--region
(the dataset is written under the prefix first unless --skip-upload).
"""

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn as nn
from local_s3 import start_local_s3
from torch.utils.data import DataLoader
from tqdm import tqdm

from s3torchconnector import S3Checkpoint, S3IterableDataset
from s3torchconnector._s3client import S3Client

CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
SAMPLE_BYTES = 1 + int(np.prod(IMAGE_SHAPE))  # one label byte, then the image


def make_sample(index: int) -> bytes:
    """A learnable synthetic image: a class-specific pattern plus noise."""
    rng = np.random.default_rng(index)
    label = index % CLASSES
    pattern = np.random.default_rng(1000 + label).integers(0, 256, IMAGE_SHAPE)
    noise = rng.integers(-40, 41, IMAGE_SHAPE)
    image = np.clip(pattern + noise, 0, 255).astype(np.uint8)
    return bytes([label]) + image.tobytes()


def decode(reader):
    """Transform for the dataset: an S3Reader in, (image, label) tensors out."""
    data = reader.read()
    label = torch.tensor(data[0], dtype=torch.long)
    image = torch.frombuffer(bytearray(data[1:]), dtype=torch.uint8).reshape(IMAGE_SHAPE)
    return image.float().div_(255.0), label


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 8 * 8, CLASSES)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def upload_dataset(client: S3Client, bucket: str, prefix: str, samples: int) -> None:
    def put(index: int) -> None:
        with client.put_object(bucket, f"{prefix}train/{index:06d}.bin") as writer:
            writer.write(make_sample(index))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(tqdm(pool.map(put, range(samples)), total=samples, desc="upload", unit="obj"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", help="S3 endpoint URL; without it a local server is started")
    parser.add_argument("--bucket", default="quickstart")
    parser.add_argument("--prefix", default="quickstart/")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-upload", action="store_true", help="the dataset is already under the prefix")
    args = parser.parse_args()

    if args.endpoint is None:
        args.endpoint = start_local_s3(args.bucket)

    client = S3Client(args.region, endpoint=args.endpoint)
    if not args.skip_upload:
        upload_dataset(client, args.bucket, args.prefix, args.samples)

    dataset = S3IterableDataset.from_prefix(
        f"s3://{args.bucket}/{args.prefix}train/",
        region=args.region,
        endpoint=args.endpoint,
        transform=decode,
        enable_sharding=True,
    )
    loader = DataLoader(dataset, batch_size=64, num_workers=args.workers)

    torch.manual_seed(0)
    model = SmallCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()

    seen = correct = 0
    started = time.perf_counter()
    progress = tqdm(loader, desc="train epoch 1", unit="batch")
    for images, labels in progress:
        optimizer.zero_grad()
        logits = model(images)
        loss = loss_fn(logits, labels)
        loss.backward()
        optimizer.step()
        seen += len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        progress.set_postfix(loss=f"{loss.item():.3f}", acc=f"{correct / seen:.2%}")
    elapsed = time.perf_counter() - started
    if seen == 0:
        raise SystemExit(f"no samples under s3://{args.bucket}/{args.prefix}train/")
    print(
        f"trained on {seen} samples in {elapsed:.1f}s: {seen / elapsed:.0f} samples/s, "
        f"{seen * SAMPLE_BYTES / elapsed / 1e6:.1f} MB/s, accuracy {correct / seen:.1%}"
    )

    checkpoint = S3Checkpoint(region=args.region, endpoint=args.endpoint)
    uri = f"s3://{args.bucket}/{args.prefix}checkpoints/epoch1.ckpt"
    with checkpoint.writer(uri) as writer:
        torch.save(model.state_dict(), writer)
    restored = SmallCNN()
    with checkpoint.reader(uri) as reader:
        restored.load_state_dict(torch.load(reader, weights_only=True))
    for name, tensor in model.state_dict().items():
        if not torch.equal(tensor, restored.state_dict()[name]):
            raise SystemExit(f"checkpoint mismatch in {name}")
    print(f"checkpoint saved to {uri} and loaded back: weights match")


if __name__ == "__main__":
    main()
