"""A bucket on a test S3 server (moto, or rclone in tests/compat), with a boto3 client to check what
it stores."""

REGION = "us-east-1"


class LocalS3:
    """The running server, a boto3 client for checking what it stores, and a fresh bucket."""

    def __init__(self, endpoint: str, bucket: str):
        import boto3

        self.endpoint = endpoint
        self.region = REGION
        self.bucket = bucket
        self.boto3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, data: bytes) -> None:
        self.boto3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        return self.boto3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def keys(self, prefix: str = "") -> list:
        paginator = self.boto3.get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    def multipart_uploads(self) -> list:
        return self.boto3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
