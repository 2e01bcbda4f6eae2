"""An embedded S3 server for the examples: moto on 127.0.0.1, with dummy credentials."""

import logging
import os


def start_local_s3(bucket: str) -> str:
    """Starts the server in this process, creates `bucket`, and returns the endpoint URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    print(f"local S3 server at {endpoint}")
    return endpoint


def add_s3_arguments(parser, bucket: str, prefix: str) -> None:
    """The options that point an example at any S3: without --endpoint it starts its own server."""
    parser.add_argument("--endpoint", help="S3 endpoint URL; without it a local server is started")
    parser.add_argument("--bucket", default=bucket)
    parser.add_argument("--prefix", default=prefix)
    parser.add_argument("--region", default="us-east-1")


def start_with_samples(args, size: int = 64 * 1024) -> None:
    """Without --endpoint: starts the local server and writes ``args.samples`` objects of ``size`` random
    bytes under the prefix (``args.endpoint`` is set to the server's)."""
    if args.endpoint is not None:
        return
    from s3torchconnector._s3client import S3Client

    args.endpoint = start_local_s3(args.bucket)
    client = S3Client(args.region, endpoint=args.endpoint)
    for index in range(args.samples):
        with client.put_object(args.bucket, f"{args.prefix}{index:06d}.bin") as writer:
            writer.write(os.urandom(size))
