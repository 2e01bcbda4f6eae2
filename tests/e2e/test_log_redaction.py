"""Credentials never reach the logs: the CRT logs the requests it signs (at INFO and below), and the
session token and signatures in them are replaced by "<redacted>" on every path a log line takes."""

from python_script import run_python

TOKEN = "SessionTokenDoNotLog5b2e9a"
SECRET = "SeCrEt/Never+Logged+1c4f"


def test_signed_requests_are_logged_without_token_or_signature(s3, tmp_path):
    s3.put("k", b"x")
    env_code = f"""
        import logging, os, sys
        os.environ.update(AWS_ACCESS_KEY_ID="AKIALOGTESTKEY000001", AWS_SECRET_ACCESS_KEY="{SECRET}",
                          AWS_SESSION_TOKEN="{TOKEN}", S3_TORCH_CONNECTOR_DEBUG_LOGS="trace",
                          S3_TORCH_CONNECTOR_LOGS_DIR_PATH=sys.argv[3])
        logging.basicConfig(level=5, format="%(name)s %(message)s")
        from s3torchconnector import _logging
        from s3torchconnector._s3client import S3Client
        assert S3Client("us-east-1", endpoint=sys.argv[1]).get_object(sys.argv[2], "k").read() == b"x"
        _logging.flush()
    """
    done = run_python(env_code, s3.endpoint, s3.bucket, tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    files = "".join(path.read_text() for path in tmp_path.iterdir())
    for text in (done.stderr, files):  # Python logging; the hourly files of the original's variables
        assert "AKIALOGTESTKEY000001" in text  # the signing was logged, with the key id it used
        assert "<redacted>" in text
        assert TOKEN not in text and SECRET not in text
        signature_lines = [line for line in text.splitlines() if "Signature=" in line]
        assert all("Signature=<redacted>" in line for line in signature_lines)
