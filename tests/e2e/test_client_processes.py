"""S3Client across processes: fork, spawn and forkserver children, interpreter exit with requests in
flight, and Ctrl-C during a request."""

import hashlib
import multiprocessing
import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from python_script import run_python

from s3torchconnector._s3client import S3Client, S3ClientConfig

MIB = 1024 * 1024
PART = 5 * MIB
SUBPROCESS_TIMEOUT = 90


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 4096  # 128 KiB
    return (block * (size // len(block) + 1))[:size]


def child_read_write(client, bucket, read_key, read_sha256, read_size, write_key, write_size, seed):
    """Runs in the child: reads what the parent wrote, writes an object of its own."""
    data = client.get_object(bucket, read_key).read()
    assert len(data) == read_size, f"read {len(data)} bytes, expected {read_size}"
    assert hashlib.sha256(data).hexdigest() == read_sha256, "the child read different bytes"
    head = bytes(client._get_object_stream(bucket, read_key, 0, 100).read_all_bytes())
    assert head == data[:100]
    with client.put_object(bucket, write_key) as writer:
        body = pattern(write_size, seed)
        for start in range(0, write_size, MIB):
            writer.write(body[start : start + MIB])
    keys = [o.key for page in client.list_objects(bucket, prefix=write_key) for o in page.object_info]
    assert keys == [write_key], keys
    assert client.head_object(bucket, write_key).size == write_size


@pytest.fixture(scope="module")
def client(s3_endpoint) -> S3Client:
    return S3Client("us-east-1", endpoint=s3_endpoint, s3client_config=S3ClientConfig(part_size=PART))


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_client_in_child_processes(s3, client, method):
    # The parent uses the client first, so a native client exists before the children start.
    source = pattern(PART + 12345, seed=1)
    with client.put_object(s3.bucket, "from-parent") as writer:
        writer.write(source)
    assert client.get_object(s3.bucket, "from-parent").read() == source

    children = 2 if method == "fork" else 1
    context = multiprocessing.get_context(method)
    processes = [
        context.Process(
            target=child_read_write,
            args=(
                client,
                s3.bucket,
                "from-parent",
                hashlib.sha256(source).hexdigest(),
                len(source),
                f"from-child-{i}",
                PART + 1000 * (i + 1),
                100 + i,
            ),
        )
        for i in range(children)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(SUBPROCESS_TIMEOUT)
        alive = process.is_alive()
        if alive:
            process.kill()
            process.join()
        assert not alive, f"a {method} child did not finish within {SUBPROCESS_TIMEOUT} s"
        assert process.exitcode == 0, f"a {method} child failed with exit code {process.exitcode}"

    for i in range(children):
        expected = pattern(PART + 1000 * (i + 1), 100 + i)
        assert s3.get(f"from-child-{i}") == expected
        assert client.get_object(s3.bucket, f"from-child-{i}").read() == expected  # the parent still works
    with client.put_object(s3.bucket, "parent-after") as writer:
        writer.write(source)
    assert s3.get("parent-after") == source
    assert s3.multipart_uploads() == []


def test_client_pickles_without_its_native_client(client, s3):
    import pickle

    s3.put("k", b"pickled")
    assert client.get_object(s3.bucket, "k").read() == b"pickled"
    copy = pickle.loads(pickle.dumps(client))
    assert (copy.region, copy.endpoint, copy.s3client_config) == (
        client.region,
        client.endpoint,
        client.s3client_config,
    )
    assert copy.get_object(s3.bucket, "k").read() == b"pickled"
    assert client.get_object(s3.bucket, "k").read() == b"pickled"


# ---------------------------------------------------------------- interpreter exit with requests in flight


EXIT_IN_FLIGHT = """
    import sys
    from s3torchconnector._s3client import S3Client, S3ClientConfig
    endpoint, bucket = sys.argv[1:3]
    client = S3Client("us-east-1", endpoint=endpoint, s3client_config=S3ClientConfig(part_size=5 * 1024 * 1024))
    whole = client._get_object_stream(bucket, "big")
    streaming = client._get_object_stream(bucket, "big", 0, None)
    assert len(streaming.next_chunk()) > 0
    reader = client.get_object(bucket, "big")
    reader.prefetch()
    landing = client.get_object(bucket, "big")
    assert len(landing.read(10)) == 10  # the rest lands in the background
    writer = client.put_object(bucket, "unfinished")
    writer.write(b"x" * (12 * 1024 * 1024))
    print("requests in flight", flush=True)
"""


def test_exit_with_requests_in_flight(s3):
    s3.put("big", os.urandom(30 * MIB))
    result = run_python(EXIT_IN_FLIGHT, s3.endpoint, s3.bucket, timeout=SUBPROCESS_TIMEOUT)
    assert "requests in flight" in result.stdout, result.stderr
    assert result.returncode == 0, result.stderr
    assert "unfinished" not in s3.keys(), "an unclosed writer must not publish its object at exit"


class StallingServer:
    """Accepts connections and reads requests, never answers."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.request_seen = threading.Event()
        self.connections = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self):
        while not self._stop:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._drain, args=(connection,), daemon=True).start()

    def _drain(self, connection):
        try:
            while connection.recv(65536):
                self.request_seen.set()
        except OSError:
            pass

    def close(self):
        self._stop = True
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def stalling_server():
    server = StallingServer()
    yield server
    server.close()


EXIT_WITH_BLOCKED_THREAD = """
    import sys, threading, time
    from s3torchconnector._s3client import S3Client, S3ClientConfig
    client = S3Client("us-east-1", endpoint=sys.argv[1], s3client_config=S3ClientConfig(max_attempts=1))
    thread = threading.Thread(target=lambda: client.get_object("bucket", "key").read(), daemon=True)
    thread.start()
    time.sleep(1)
    print("exiting", flush=True)
"""


def test_exit_while_a_daemon_thread_waits_on_a_request(stalling_server):
    result = run_python(EXIT_WITH_BLOCKED_THREAD, stalling_server.endpoint, timeout=SUBPROCESS_TIMEOUT)
    assert stalling_server.request_seen.is_set()
    assert "exiting" in result.stdout, result.stderr
    assert result.returncode == 0, result.stderr


def test_a_fork_while_the_client_lock_is_held_does_not_hang_the_child(s3):
    """Another thread may hold the lock that builds a client's native client when a fork happens:
    the child's copy of that lock would stay held forever, so the child gets a fresh one."""
    s3.put("k", b"forked")
    result = run_python(
        """
        import os, sys
        from s3torchconnector._s3client import S3Client

        client = S3Client("us-east-1", endpoint=sys.argv[1])
        client._native._lock.acquire()  # as another thread would hold it at the moment of the fork
        pid = os.fork()
        if pid == 0:
            os._exit(0 if client.get_object(sys.argv[2], "k").read() == b"forked" else 3)
        print("child exit code", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        """,
        s3.endpoint,
        s3.bucket,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert "child exit code 0" in result.stdout, result.stderr


def test_a_fork_while_a_reader_lands_in_the_background(s3):
    """The parent's reader has a lander thread, which a forked child does not have: the child drops
    its copy of the reader without touching it, and reads through the client anew."""
    data = os.urandom(30 * MIB)
    s3.put("big", data)
    result = run_python(
        """
        import gc, hashlib, os, sys
        from s3torchconnector._s3client import S3Client

        client = S3Client("us-east-1", endpoint=sys.argv[1])
        landing = client.get_object(sys.argv[2], "big")
        landing.read(10)
        pid = os.fork()
        if pid == 0:
            del landing
            gc.collect()
            ok = hashlib.sha256(client.get_object(sys.argv[2], "big").read()).hexdigest() == sys.argv[3]
            os._exit(0 if ok else 3)
        print("child exit code", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        landing.seek(0)
        print("parent read", hashlib.sha256(landing.read()).hexdigest() == sys.argv[3])
        """,
        s3.endpoint,
        s3.bucket,
        hashlib.sha256(data).hexdigest(),
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert "child exit code 0" in result.stdout and "parent read True" in result.stdout, result.stderr


# ---------------------------------------------------------------- Ctrl-C

# Runs each operation against its own stalling server. Every interrupt but the last is caught (the
# client must stay usable after one); the last propagates, as an uncaught Ctrl-C does.
INTERRUPTED = """
    import signal, sys
    # Python turns SIGINT into KeyboardInterrupt only if SIGINT was not ignored when it started; a run
    # launched in the background (`pytest &` in a script) ignores it, and so would this process.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from s3torchconnector._s3client import S3Client, S3ClientConfig

    def run(operation, endpoint):
        client = S3Client("us-east-1", endpoint=endpoint,
                          s3client_config=S3ClientConfig(max_attempts=1, part_size=5 * 1024 * 1024))
        if operation == "read":
            client.get_object("bucket", "large-object").read()
        elif operation == "partial-read":  # the sequential reader's pieces, served as their bytes land
            client.get_object("bucket", "large-object").read(10)
        elif operation == "streaming-read":
            client._get_object_stream("bucket", "large-object", 0, None).next_chunk()
        elif operation == "head":
            client.head_object("bucket", "key")
        elif operation == "multipart-put":
            with client.put_object("bucket", "key") as writer:
                for _ in range(4):
                    writer.write(b"x" * (5 * 1024 * 1024))

    pairs = list(zip(sys.argv[1::2], sys.argv[2::2]))
    for index, (operation, endpoint) in enumerate(pairs):
        try:
            run(operation, endpoint)
            print("finished without an interrupt", operation, flush=True)
        except KeyboardInterrupt:
            if index == len(pairs) - 1:
                raise
            print("interrupted", operation, flush=True)
"""

# One per kind of native wait: a whole read, a read of a piece, a streaming read, a one-shot request,
# an upload's write. "read" goes last: its KeyboardInterrupt is the one that ends the interpreter.
INTERRUPTED_OPERATIONS = ["streaming-read", "partial-read", "head", "multipart-put", "read"]


def test_ctrl_c_interrupts_a_stalled_request():
    servers = [StallingServer() for _ in INTERRUPTED_OPERATIONS]
    arguments = [a for op, server in zip(INTERRUPTED_OPERATIONS, servers) for a in (op, server.endpoint)]
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(INTERRUPTED), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    lines = queue.Queue()

    def read_lines():
        for line in process.stdout:
            lines.put(line.strip())
        lines.put(None)  # the child exited

    threading.Thread(target=read_lines, daemon=True).start()
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    try:
        for operation, server in zip(INTERRUPTED_OPERATIONS, servers):
            while not server.request_seen.is_set():
                assert process.poll() is None, f"{operation}: exited early: {process.stderr.read()[-3000:]}"
                assert time.monotonic() < deadline, f"{operation}: no request reached the server"
                time.sleep(0.05)
            time.sleep(1)  # the request is in flight and stalled
            process.send_signal(signal.SIGINT)
            if operation == INTERRUPTED_OPERATIONS[-1]:
                break
            try:
                line = lines.get(timeout=max(1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"{operation}: Ctrl-C did not interrupt the waiting call")
            if line is None:
                process.wait()
                pytest.fail(f"{operation}: exited ({process.returncode}) instead: {process.stderr.read()[-3000:]}")
            assert line == f"interrupted {operation}", line
        try:
            _, stderr = process.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"{INTERRUPTED_OPERATIONS[-1]}: the interpreter did not exit after Ctrl-C")
        assert process.returncode != 0
        assert "KeyboardInterrupt" in stderr, stderr[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for server in servers:
            server.close()


# ---------------------------------------------------------------- waits that end while the interpreter exits

# A daemon thread may still wait in a native call when the main thread exits, and that wait may end (its
# request completes, fails or is cut off) while the interpreter finalizes: the thread must not take the GIL
# back then (CPython would end it mid-call and abort the process: "terminate called without an active exception").

# Each daemon thread blocks in one kind of native wait against a server that never answers. Once all four
# requests have reached it, a hook run by the interpreter's finalization (a module's object, freed when
# sys.modules is cleared) has the server cut every connection, and waits while the four waits end.
EXIT_AS_WAITS_END = """
    import os, socket, sys, threading, time, types
    from s3torchconnector._s3client import S3Client, S3ClientConfig

    endpoint, control_port = sys.argv[1], int(sys.argv[2])
    client = S3Client("us-east-1", endpoint=endpoint,
                      s3client_config=S3ClientConfig(max_attempts=1, part_size=5 * 1024 * 1024))
    waits = {
        "read": lambda: client.get_object("bucket", "read").read(),
        "streaming-read": lambda: client._get_object_stream("bucket", "streaming-read", 0, None).next_chunk(),
        "write": lambda: client.put_object("bucket", "write").write(b"x" * (6 * 1024 * 1024)),
        "head": lambda: client.head_object("bucket", "head"),
    }
    for wait in waits.values():
        threading.Thread(target=wait, daemon=True).start()
    control = socket.create_connection(("127.0.0.1", control_port))
    control.settimeout(60)
    assert control.recv(16) == b"all in flight"

    class CutAtFinalization:
        def __del__(self, send=os.write, sleep=time.sleep, fd=control.fileno(), keep=control):
            send(fd, b"cut")
            sleep(0.5)  # the daemon threads' waits end meanwhile

    # Not a global of __main__: the daemon threads' functions hold its namespace, never cleared then.
    module = types.ModuleType("_cut_at_finalization")
    module.hook = CutAtFinalization()
    sys.modules[module.__name__] = module
    del module
    print("exiting", flush=True)
"""


class CuttingServer(StallingServer):
    """A StallingServer with a control connection: it says when requests for all four of EXIT_AS_WAITS_END's
    keys are in flight, and cuts every connection when told to."""

    KEYS = ("/bucket/read", "/bucket/streaming-read", "/bucket/write", "/bucket/head")

    def __init__(self):
        super().__init__()
        self.control = socket.socket()
        self.control.bind(("127.0.0.1", 0))
        self.control.listen(16)
        self.control_port = self.control.getsockname()[1]
        self.received = []
        self.cuts = 0
        threading.Thread(target=self._serve_control, daemon=True).start()

    def _drain(self, connection):
        try:
            while True:
                data = connection.recv(65536)
                if not data:
                    return
                self.received.append(data)
                self.request_seen.set()
        except OSError:
            pass

    def _all_in_flight(self) -> bool:
        request_lines = [line for data in list(self.received) for line in data.split(b"\r\n") if b" HTTP/1.1" in line]
        return all(any(key.encode() in line for line in request_lines) for key in self.KEYS)

    def _serve_control(self):
        while not self._stop:
            try:
                control, _ = self.control.accept()
            except OSError:
                return
            deadline = time.monotonic() + SUBPROCESS_TIMEOUT
            while not self._all_in_flight() and time.monotonic() < deadline:
                time.sleep(0.02)
            self.received.clear()
            try:
                control.sendall(b"all in flight")
                if control.recv(16) == b"cut":
                    self.cuts += 1
                    for connection in list(self.connections):
                        connection.shutdown(socket.SHUT_RDWR)  # ends the drain's recv; the client sees the close
                        connection.close()
                    self.connections.clear()
            except OSError:
                pass
            control.close()

    def close(self):
        super().close()
        self.control.close()


def test_exit_while_daemon_threads_waits_end_during_finalization():
    server = CuttingServer()
    runs = 3
    try:
        for run in range(runs):
            result = run_python(EXIT_AS_WAITS_END, server.endpoint, server.control_port, timeout=SUBPROCESS_TIMEOUT)
            assert "exiting" in result.stdout, f"run {run}: {result.stderr}"
            assert result.returncode == 0 and "terminate" not in result.stderr, (
                f"run {run}: exit code {result.returncode}\n{result.stderr[-3000:]}"
            )
        assert server.cuts == runs, "the finalization hook did not cut the connections"
    finally:
        server.close()


# Daemon threads keep requests of each kind completing, so some wait ends while the interpreter finalizes:
# whole reads, streaming reads (next_chunk and readinto), multipart writes and HEADs against the real server.
EXIT_WITH_REQUESTS_COMPLETING = """
    import os, sys, threading, time
    from s3torchconnector._s3client import S3Client, S3ClientConfig

    endpoint, bucket = sys.argv[1:3]
    client = S3Client("us-east-1", endpoint=endpoint, s3client_config=S3ClientConfig(part_size=5 * 1024 * 1024))
    running = []

    def forever(name, step):
        def run():
            step()
            running.append(name)
            while True:
                step()
        threading.Thread(target=run, daemon=True).start()

    def stream_chunks():
        stream = client._get_object_stream(bucket, "big", 0, None)
        while stream.next_chunk() is not None:
            pass

    def stream_into():
        stream, buffer = client._get_object_stream(bucket, "big", 0, None), bytearray(256 * 1024)
        while stream.readinto(buffer):
            pass

    def write():
        with client.put_object(bucket, f"written-{os.getpid()}") as writer:
            for _ in range(3):
                writer.write(b"x" * (4 * 1024 * 1024))

    forever("read", lambda: client.get_object(bucket, "small").read())
    forever("next_chunk", stream_chunks)
    forever("readinto", stream_into)
    forever("write", write)
    forever("head", lambda: client.head_object(bucket, "small"))
    deadline = time.monotonic() + 60
    while len(running) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(running) == 5, running
    time.sleep(float(sys.argv[3]))
    print("exiting", flush=True)
"""


def test_exit_while_daemon_threads_requests_complete(s3):
    s3.put("small", os.urandom(2 * MIB))
    s3.put("big", os.urandom(12 * MIB))
    for run in range(8):  # each exits at another moment of the threads' requests
        result = run_python(
            EXIT_WITH_REQUESTS_COMPLETING, s3.endpoint, s3.bucket, 0.04 * run, timeout=SUBPROCESS_TIMEOUT
        )
        assert "exiting" in result.stdout, f"run {run}: {result.stderr}"
        assert result.returncode == 0 and "terminate" not in result.stderr, (
            f"run {run}: exit code {result.returncode}\n{result.stderr[-3000:]}"
        )
