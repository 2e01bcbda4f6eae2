"""https endpoints verify certificates by default: a certificate from an untrusted CA or for another
host fails the connection, and naming the CA in AWS_CA_BUNDLE makes it pass.

Real TLS over real sockets: a small forwarder on 127.0.0.1 terminates TLS with certificates made
here and pipes the plaintext to moto's HTTP server. The client's TLS context is made once per
process, on first use, from AWS_CA_BUNDLE as it is then (cpp/runtime.cpp), so every scenario runs
in a fresh interpreter with its own environment.

A failed handshake is held for s2n's blinding delay (10-30 s, aws-c-io honours it before closing),
so the two failing scenarios run in the background from the start of the module, alongside the
quick ones. They use the default max_attempts (10): a refused certificate must end the call instead
of being retried (the CRT alone retries it as a transient error: 211 s for one HEAD when measured).
The client learns of a failed attempt only as the retry starts, so a call may see a second handshake.
"""

import datetime
import ipaddress
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.parse
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from loopback_server import LoopbackServer

SUBPROCESS_TIMEOUT = 90  # detects a hang: a scenario takes a few seconds, or one blinding delay (<= 30 s)
IO_TIMEOUT = 30.0  # no forwarder thread waits on a peer longer than this
PART = 5 * 1024 * 1024


# ---------------------------------------------------------------- certificates


class Pki:
    """A private CA and server certificates it signs, as PEM files."""

    def __init__(self, directory):
        self.directory = directory
        now = datetime.datetime.now(datetime.timezone.utc)
        # Valid from an hour ago: a clock a little behind must not make the happy path fail.
        self.not_before, self.not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s3torchconnector test CA")])
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(self.ca_name)
            .issuer_name(self.ca_name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before)
            .not_valid_after(self.not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file = self._write("ca.pem", self.ca_cert.public_bytes(serialization.Encoding.PEM))

    def _write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def server_cert(self, name: str, dns_names, ip_addresses=()):
        """Writes a server certificate and its key signed by the CA; returns (cert file, key file)."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(self.ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before)
            .not_valid_after(self.not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        cert_file = self._write(f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
        key_file = self._write(
            f"{name}.key",
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        return cert_file, key_file


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(str(tmp_path_factory.mktemp("pki")))


# ---------------------------------------------------------------- the TLS-terminating forwarder


class TlsForwarder(LoopbackServer):
    """Accepts TLS on 127.0.0.1, and pipes each connection's plaintext to and from the upstream
    HTTP server over a fresh TCP connection. Records how each handshake ended and how many
    plaintext bytes reached the upstream. The handshake runs in the connection's own thread: a
    client that stalls or rejects the certificate holds up only its own connection."""

    def __init__(self, upstream: str, cert_file: str, key_file: str):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file, key_file)
        self.handshakes = []  # "ok", or the server side's error for each connection
        self.bytes_upstream = 0
        super().__init__("tls-forwarder")
        self.endpoint = f"https://127.0.0.1:{self.port}"

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(IO_TIMEOUT)
        tls = self.context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        self._track(tls)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as error:
            with self._lock:
                self.handshakes.append(f"{type(error).__name__}: {error}")
            tls.close()
            return
        with self._lock:
            self.handshakes.append("ok")
        try:
            upstream = socket.create_connection(self.upstream, timeout=IO_TIMEOUT)
        except OSError:
            tls.close()
            return
        self._track(upstream)
        try:
            self._pipe(tls, upstream)
        except (ssl.SSLError, OSError):
            pass
        finally:
            upstream.close()
            tls.close()

    def _pipe(self, tls: ssl.SSLSocket, upstream: socket.socket) -> None:
        # One thread drives both directions: an SSL object must not be read and written at once.
        while not self._stopping.is_set():
            readable, _, _ = select.select([tls, upstream], [], [], 0.2)
            if tls in readable or tls.pending():
                data = tls.recv(65536)
                if not data:
                    return
                while tls.pending():  # decrypted bytes select() cannot see
                    data += tls.recv(65536)
                upstream.sendall(data)
                with self._lock:
                    self.bytes_upstream += len(data)
            if upstream in readable:
                data = upstream.recv(65536)
                if not data:
                    return
                tls.sendall(data)


# ---------------------------------------------------------------- running a client in a fresh process

CHILD_PRELUDE = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from s3torchconnector import S3Exception

    def attempt(function):
        # What a call did: its result, or the exception it raised, and how long it took.
        start = time.monotonic()
        try:
            outcome = {"raised": None, "value": function()}
        except Exception as error:
            outcome = {"raised": type(error).__name__, "is_s3_exception": isinstance(error, S3Exception),
                       "message": str(error), "code": getattr(error, "code", None)}
        outcome["seconds"] = round(time.monotonic() - start, 3)
        return outcome

    def concurrently(calls):
        # Each call in its own thread: failed handshakes wait out their blinding delays in parallel.
        out = {}
        threads = [threading.Thread(target=lambda n=n, f=f: out.__setitem__(n, attempt(f))) for n, f in calls.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return out
    """
)


class ClientProcess:
    """Client code running in a new interpreter (so with a new TLS context), AWS_CA_BUNDLE set to
    ca_bundle or unset. result() is the JSON object it prints on its last line."""

    def __init__(self, code: str, *args, ca_bundle=None):
        env = os.environ.copy()
        env.pop("AWS_CA_BUNDLE", None)  # the machine may set one for the system store
        if ca_bundle is not None:
            env["AWS_CA_BUNDLE"] = ca_bundle
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        self._result = None

    def result(self) -> dict:
        if self._result is None:
            try:
                stdout, stderr = self.process.communicate(timeout=max(0.1, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill()
                _, stderr = self.process.communicate()
                pytest.fail(
                    f"the client process did not finish within {SUBPROCESS_TIMEOUT} s; stderr: {stderr[-3000:]!r}"
                )
            assert self.process.returncode == 0, (
                f"the client process failed ({self.process.returncode}):\n{stderr[-4000:]}"
            )
            lines = stdout.strip().splitlines()
            assert lines, f"the client process printed nothing; stderr:\n{stderr[-4000:]}"
            self._result = json.loads(lines[-1])
        return self._result

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def run_client(code: str, *args, ca_bundle=None) -> dict:
    return ClientProcess(code, *args, ca_bundle=ca_bundle).result()


def describe(outcome) -> str:
    return json.dumps(outcome, indent=1)


class Bucket:
    """A fresh bucket on moto, checked over plain HTTP with boto3 (not through the client under test)."""

    def __init__(self, s3_endpoint: str):
        import boto3

        self.name = f"tls-{uuid.uuid4().hex[:16]}"
        self.boto3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
        self.boto3.create_bucket(Bucket=self.name)
        self.boto3.put_object(Bucket=self.name, Key="existing", Body=EXISTING)

    def get(self, key: str) -> bytes:
        return self.boto3.get_object(Bucket=self.name, Key=key)["Body"].read()

    def keys(self) -> list:
        return [item["Key"] for item in self.boto3.list_objects_v2(Bucket=self.name).get("Contents", [])]

    def multipart_uploads(self) -> list:
        return self.boto3.list_multipart_uploads(Bucket=self.name).get("Uploads", [])


EXISTING = b"readable only over a verified connection"


# ---------------------------------------------------------------- (a) and (d): connections that must fail

# A put and a get, concurrently, with the default retry settings.
FAILING_CALLS = """
    from s3torchconnector._s3client import S3Client
    endpoint, bucket = sys.argv[1:3]
    client = S3Client("us-east-1", endpoint=endpoint)
    def put():
        with client.put_object(bucket, "written") as writer:
            writer.write(b"must not arrive")
    print(json.dumps(concurrently({
        "put": put,
        "get": lambda: client.get_object(bucket, "existing").read().decode(),
    })))
"""


class FailingScenario:
    def __init__(self, s3_endpoint: str, cert_and_key, ca_bundle):
        self.bucket = Bucket(s3_endpoint)
        self.forwarder = TlsForwarder(s3_endpoint, *cert_and_key)
        self.ca_bundle = ca_bundle
        self.client = ClientProcess(FAILING_CALLS, self.forwarder.endpoint, self.bucket.name, ca_bundle=ca_bundle)


@pytest.fixture(scope="module", autouse=True)
def failing_scenarios(pki, s3_endpoint):
    """Starts (a) and (d) when the module starts: each waits out a blinding delay in the background
    while the quick tests, placed first in this file, run; their tests, placed last, collect them.

    The certificates differ from (b)'s only where the scenario says: (a) is (b) without
    AWS_CA_BUNDLE, (d) is (b) with the host names changed, so each failure has that one cause."""
    scenarios = {}
    try:
        # (a) a certificate for 127.0.0.1 from a CA the client was not told about
        scenarios["untrusted"] = FailingScenario(
            s3_endpoint, pki.server_cert("a-local", ["localhost"], ["127.0.0.1"]), None
        )
        # (d) the CA is trusted, but its certificate names another host only
        scenarios["wrong_host"] = FailingScenario(
            s3_endpoint, pki.server_cert("d-other", ["other.example"]), pki.ca_file
        )
        yield scenarios
    finally:
        for scenario in scenarios.values():
            scenario.client.kill()
            scenario.forwarder.stop()


def assert_refused(scenario: FailingScenario) -> dict:
    """Every call raised an S3Exception saying the TLS handshake with the endpoint failed; no
    plaintext reached moto; nothing was written."""
    out = scenario.client.result()
    endpoint = scenario.forwarder.endpoint
    for name, outcome in out.items():
        assert outcome["raised"] is not None, (
            f"{name} succeeded over an unverifiable TLS connection: {describe(outcome)}"
        )
        assert outcome["is_s3_exception"], f"{name}: expected an S3Exception: {describe(outcome)}"
        message = outcome["message"]
        assert "TLS" in message, f"{name}: the message does not say TLS failed: {message}"
        assert endpoint in message, f"{name}: the message does not name the endpoint {endpoint}: {message}"
        assert "attempts" not in message, f"{name}: a refused certificate is not worth retrying: {message}"
    assert scenario.forwarder.handshakes, "no TLS connection reached the forwarder"
    # One handshake per call (at most one more for a connection opened ahead), not one per attempt.
    assert len(scenario.forwarder.handshakes) <= 2 * len(out), scenario.forwarder.handshakes
    assert "ok" not in scenario.forwarder.handshakes, scenario.forwarder.handshakes
    assert scenario.forwarder.bytes_upstream == 0, "plaintext reached moto over an unverified connection"
    assert scenario.bucket.keys() == ["existing"]
    assert scenario.bucket.multipart_uploads() == []
    return out


# ---------------------------------------------------------------- (b) AWS_CA_BUNDLE names the CA: round trips

TRUSTED = """
    from s3torchconnector import S3Checkpoint
    from s3torchconnector._s3client import S3Client, S3ClientConfig
    endpoint, bucket, data_file = sys.argv[1:4]
    data = open(data_file, "rb").read()
    small = data[:1000]
    out = {}
    client = S3Client("us-east-1", endpoint=endpoint, s3client_config=S3ClientConfig(part_size=5 * 1024 * 1024))

    def put(key, body):
        with client.put_object(bucket, key) as writer:
            writer.write(body)

    out["client_put_small"] = attempt(lambda: put("client-small", small))
    out["client_put_multipart"] = attempt(lambda: put("client-multipart", data))
    out["client_get_small_equal"] = attempt(lambda: client.get_object(bucket, "client-small").read() == small)
    out["client_get_multipart_equal"] = attempt(lambda: client.get_object(bucket, "client-multipart").read() == data)

    checkpoint = S3Checkpoint(region="us-east-1", endpoint=endpoint)
    uri = f"s3://{bucket}/checkpoint.bin"
    def checkpoint_write():
        with checkpoint.writer(uri) as writer:
            writer.write(data)
    def checkpoint_read():
        with checkpoint.reader(uri) as reader:
            return reader.read() == data
    out["checkpoint_write"] = attempt(checkpoint_write)
    out["checkpoint_read_equal"] = attempt(checkpoint_read)
    print(json.dumps(out))
"""


def test_ca_bundle_makes_the_connection_pass(pki, s3_endpoint, tmp_path):
    # Also the control for (a) and (d): the same CA, forwarder and key type do work.
    bucket = Bucket(s3_endpoint)
    forwarder = TlsForwarder(s3_endpoint, *pki.server_cert("b-local", ["localhost"], ["127.0.0.1"]))
    try:
        data = os.urandom(PART + 4321)  # more than a part: a multipart upload and a ranged download
        data_file = tmp_path / "data.bin"
        data_file.write_bytes(data)
        out = run_client(TRUSTED, forwarder.endpoint, bucket.name, data_file, ca_bundle=pki.ca_file)
        print("\n(b) AWS_CA_BUNDLE names the CA:", describe(out))
        for name, outcome in out.items():
            assert outcome["raised"] is None, f"{name} failed: {describe(outcome)}"
            if name.endswith("_equal"):
                assert outcome["value"] is True, f"{name}: the bytes read back differ from those written"
        # What moto stores, read over plain HTTP, is exactly what went in over TLS.
        assert bucket.get("client-small") == data[:1000]
        assert bucket.get("client-multipart") == data
        assert bucket.get("checkpoint.bin") == data
        assert bucket.multipart_uploads() == []
        assert forwarder.handshakes and set(forwarder.handshakes) == {"ok"}, forwarder.handshakes
        assert forwarder.bytes_upstream > 2 * len(data)  # both uploads of data went through the forwarder
    finally:
        forwarder.stop()


SET_AFTER_IMPORT = """
    from s3torchconnector._s3client import S3Client
    endpoint, bucket, ca_file = sys.argv[1:4]
    time.sleep(0.5)  # the context the import makes ahead, for the system's store, is ready by now
    os.environ["AWS_CA_BUNDLE"] = ca_file
    client = S3Client("us-east-1", endpoint=endpoint)
    print(json.dumps({"get": attempt(lambda: client.get_object(bucket, "existing").read().decode())}))
"""


def test_ca_bundle_set_after_the_import_is_honoured(pki, s3_endpoint):
    # The import makes the process's TLS context ahead of any client, from AWS_CA_BUNDLE as it was then
    # (unset here); a bundle set before the first client must still be the one trusted.
    bucket = Bucket(s3_endpoint)
    forwarder = TlsForwarder(s3_endpoint, *pki.server_cert("e-local", ["localhost"], ["127.0.0.1"]))
    try:
        out = run_client(SET_AFTER_IMPORT, forwarder.endpoint, bucket.name, pki.ca_file)
        assert out["get"]["raised"] is None, describe(out)
        assert out["get"]["value"] == EXISTING.decode()
        assert set(forwarder.handshakes) == {"ok"}, forwarder.handshakes
    finally:
        forwarder.stop()


# ---------------------------------------------------------------- (c) AWS_CA_BUNDLE names an unusable file

BAD_BUNDLE = """
    from s3torchconnector._s3client import S3Client, S3ClientConfig
    endpoint, bucket = sys.argv[1:3]
    client = S3Client("us-east-1", endpoint=endpoint, s3client_config=S3ClientConfig(max_attempts=1))
    def put():
        with client.put_object(bucket, "written") as writer:
            writer.write(b"must not arrive")
    # Several calls: a caller that retries gets the same clear error again, not a crash or a hang.
    calls = [("put", put), ("get", lambda: client.get_object(bucket, "existing").read().decode())]
    calls += [(f"head-{i}", lambda: client.head_object(bucket, "existing").size) for i in range(4)]
    out, threads = {}, []
    for name, call in calls:
        out[name] = attempt(call)
        threads.append(len(os.listdir("/proc/self/task")))  # native threads too, not just Python's
    print(json.dumps({"calls": out, "threads": threads}))
"""


@pytest.fixture
def forwarder(pki, s3_endpoint):
    forwarder = TlsForwarder(s3_endpoint, *pki.server_cert("c-local", ["localhost"], ["127.0.0.1"]))
    yield forwarder
    forwarder.stop()


def bad_bundle_run(s3_endpoint, forwarder, bundle: str) -> dict:
    bucket = Bucket(s3_endpoint)
    run = run_client(BAD_BUNDLE, forwarder.endpoint, bucket.name, ca_bundle=bundle)
    assert forwarder.handshakes == [], "the client connected without a usable trust store"
    assert bucket.keys() == ["existing"]
    return run


def assert_bundle_named(run: dict, bundle: str) -> None:
    for name, outcome in run["calls"].items():
        assert outcome["raised"] is not None, f"{name} succeeded with AWS_CA_BUNDLE={bundle}: {describe(outcome)}"
        message = outcome["message"]
        assert "AWS_CA_BUNDLE" in message and bundle in message, (
            f"{name}: the message does not name AWS_CA_BUNDLE and the file {bundle}: {message}"
        )


@pytest.fixture(scope="module")
def missing_bundle(pki, s3_endpoint, tmp_path_factory):
    """One run with AWS_CA_BUNDLE naming a missing file, for the two tests below."""
    path = str(tmp_path_factory.mktemp("missing") / "no-such-ca.pem")
    forwarder = TlsForwarder(s3_endpoint, *pki.server_cert("c-missing", ["localhost"], ["127.0.0.1"]))
    try:
        yield path, bad_bundle_run(s3_endpoint, forwarder, path)
    finally:
        forwarder.stop()


def test_missing_ca_bundle_file_is_named(missing_bundle):
    path, run = missing_bundle
    print("\n(c) AWS_CA_BUNDLE names a missing file:", describe(run))
    assert_bundle_named(run, path)


def test_failing_to_load_the_ca_bundle_again_does_not_leak_threads(missing_bundle):
    # The runtime is not kept when its TLS context cannot be made, so every call tries again:
    # what each try starts (event-loop threads) must not outlive it.
    _, run = missing_bundle
    threads = run["threads"]
    assert threads[-1] == threads[0], f"each failed call left threads behind (threads after each call: {threads})"


def test_ca_bundle_that_is_not_pem_is_named(s3_endpoint, forwarder, tmp_path):
    not_pem = tmp_path / "not-a-certificate.pem"
    not_pem.write_text("this is not a PEM certificate\n")
    run = bad_bundle_run(s3_endpoint, forwarder, str(not_pem))
    print("\n(c) AWS_CA_BUNDLE names a file that is not PEM:", describe(run))
    assert_bundle_named(run, str(not_pem))


def test_ca_bundle_with_a_corrupt_certificate_is_named(pki, s3_endpoint, forwarder, tmp_path):
    # A PEM block whose certificate was cut short, as a truncated download leaves it.
    lines = open(pki.ca_file).read().splitlines()
    corrupt = tmp_path / "truncated-ca.pem"
    corrupt.write_text("\n".join(lines[:3] + lines[-1:]) + "\n")
    run = bad_bundle_run(s3_endpoint, forwarder, str(corrupt))
    print("\n(c) AWS_CA_BUNDLE names a truncated certificate:", describe(run))
    assert_bundle_named(run, str(corrupt))


# ---------------------------------------------------------------- (a) no AWS_CA_BUNDLE


def test_untrusted_certificate_fails_the_connection(failing_scenarios):
    scenario = failing_scenarios["untrusted"]
    out = assert_refused(scenario)
    print(
        "\n(a) no AWS_CA_BUNDLE:",
        describe(out),
        "\n(a) handshakes as the server saw them:",
        scenario.forwarder.handshakes,
    )
    for name, outcome in out.items():
        assert "AWS_CA_BUNDLE" in outcome["message"], f"{name}: the message does not say how to trust a private CA"


# ---------------------------------------------------------------- (d) trusted CA, certificate for another host


def test_certificate_for_another_host_fails(failing_scenarios):
    scenario = failing_scenarios["wrong_host"]
    out = assert_refused(scenario)
    print(
        "\n(d) certificate for other.example:",
        describe(out),
        "\n(d) handshakes as the server saw them:",
        scenario.forwarder.handshakes,
    )


def test_certificate_for_another_host_message_does_not_blame_the_ca(failing_scenarios):
    # AWS_CA_BUNDLE is set and holds the right CA: "set AWS_CA_BUNDLE" alone sends the user the
    # wrong way; the message should point at the host name or at the bundle in use.
    scenario = failing_scenarios["wrong_host"]
    for name, outcome in scenario.client.result().items():
        message = outcome.get("message") or ""
        assert scenario.ca_bundle in message or "host" in message.replace(scenario.forwarder.endpoint, ""), (
            f"{name}: with AWS_CA_BUNDLE={scenario.ca_bundle} set, the message gives no hint of what is wrong: {message}"
        )
