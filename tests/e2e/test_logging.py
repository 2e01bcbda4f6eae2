"""Native logs: S3_TORCH_CONNECTOR_DEBUG_LOGS / S3_TORCH_CONNECTOR_LOGS_DIR_PATH as the original honours
them, and the bridge into Python logging. The logger is per process, so each case runs in a fresh
interpreter against the moto server."""

import json
import logging
import os
import re

import pytest
from python_script import run_python

from s3torchconnector._logging import DEBUG_LOGS_VARIABLE, LOGS_DIR_VARIABLE, TRACE, parse_filter

TIMEOUT = 120

# A line of the writer: "2026-05-01T13:04:05.123456Z DEBUG awscrt::S3MetaRequest: message".
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (ERROR| WARN| INFO|DEBUG|TRACE) (\S+): ", re.M)

PRELUDE = """
    import json, logging, os, sys
    endpoint, bucket = sys.argv[1], sys.argv[2]
    from s3torchconnector._s3client import S3Client
    from s3torchconnector import _logging, _native
    client = S3Client("us-east-1", endpoint=endpoint)

    def get(key):
        return client.get_object(bucket, key).read()
"""


@pytest.fixture(autouse=True)
def no_log_variables(monkeypatch):
    monkeypatch.delenv(DEBUG_LOGS_VARIABLE, raising=False)
    monkeypatch.delenv(LOGS_DIR_VARIABLE, raising=False)


def run(code: str, s3, *args, path=None):
    result = run_python(PRELUDE + code, s3.endpoint, s3.bucket, *args, timeout=TIMEOUT, path=path)
    assert "Fatal Python error" not in result.stderr, result.stderr
    return result


def targets(text: str) -> set:
    return {match.group(2) for match in LINE.finditer(text)}


# ---------------------------------------------------------------- the variables


def test_debug_logs_write_crt_lines_to_stderr(s3, monkeypatch):
    s3.put("k", b"x" * 1000)
    monkeypatch.setenv(DEBUG_LOGS_VARIABLE, "debug")
    result = run(
        """
    assert get("k") == b"x" * 1000
    print(_logging.native_log_level())
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["debug"]
    found = targets(result.stderr)
    assert "awscrt::S3MetaRequest" in found, result.stderr[-3000:]
    assert "s3torchconnectorclient" in found  # our own: the runtime started
    assert not any(level == "TRACE" for level in LINE.findall(result.stderr))


def test_awscrt_off_leaves_no_crt_lines(s3, monkeypatch):
    s3.put("k", b"x" * 1000)
    monkeypatch.setenv(DEBUG_LOGS_VARIABLE, "debug,awscrt=off")
    result = run(
        """
    assert get("k") == b"x" * 1000
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr
    assert targets(result.stderr) == {"s3torchconnectorclient"}, result.stderr[-3000:]
    assert "awscrt" not in result.stderr


def test_one_subject_more_detailed_than_the_rest(s3, monkeypatch):
    s3.put("k", b"x" * 1000)
    monkeypatch.setenv(DEBUG_LOGS_VARIABLE, "error,awscrt::S3MetaRequest=trace,s3torchconnectorclient=off")
    result = run(
        """
    assert get("k") == b"x" * 1000
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr
    levels_by_target = {}
    for level, target in LINE.findall(result.stderr):
        levels_by_target.setdefault(target, set()).add(level.strip())
    assert "DEBUG" in levels_by_target.get("awscrt::S3MetaRequest", set()), result.stderr[-3000:]
    for target, levels in levels_by_target.items():
        if target != "awscrt::S3MetaRequest":
            assert levels <= {"ERROR"}, (target, levels)


def test_logs_dir_gets_hourly_files_instead_of_stderr(s3, monkeypatch, tmp_path):
    s3.put("k", b"x" * 1000)
    folder = tmp_path / "logs" / "nested"  # made when missing, as the original does
    monkeypatch.setenv(DEBUG_LOGS_VARIABLE, "debug")
    monkeypatch.setenv(LOGS_DIR_VARIABLE, str(folder))
    result = run(
        """
    assert get("k") == b"x" * 1000
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr
    assert not LINE.search(result.stderr), result.stderr[-3000:]
    files = sorted(os.listdir(folder))
    assert files, "no log file"
    for name in files:
        assert re.fullmatch(r"s3torchconnectorclient\.log\.\d{4}-\d\d-\d\d-\d\d", name), name
    text = "".join((folder / name).read_text() for name in files)
    assert "awscrt::S3MetaRequest" in targets(text)
    assert LINE.match(text)


def test_logs_dir_that_cannot_be_made_is_a_clear_error(s3, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(DEBUG_LOGS_VARIABLE, "debug")
    monkeypatch.setenv(LOGS_DIR_VARIABLE, str(blocker / "logs"))
    result = run(
        """
    try:
        get("k")
    except ValueError as error:
        print(error)
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr
    assert LOGS_DIR_VARIABLE in result.stdout and "a-file" in result.stdout, result.stdout


@pytest.mark.parametrize(
    "value, directive",
    [
        ("debug,awscrt=loud", "awscrt=loud"),
        ("invalid123.&/?", "invalid123.&/?"),
        ("=debug", "=debug"),
    ],
)
def test_bad_filter_is_a_value_error_naming_the_variable_and_directive(s3, monkeypatch, value, directive):
    s3.put("k", b"x")
    monkeypatch.setenv(DEBUG_LOGS_VARIABLE, value)
    result = run(
        """
    for attempt in range(2):  # nothing is half set up: each client made raises the same
        try:
            get("k")
            print("no error")
        except ValueError as error:
            print(json.dumps(str(error)))
    print(_native.log_level())
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr
    *errors, level = result.stdout.splitlines()
    assert len(errors) == 2 and errors[0] == errors[1], result.stdout
    message = json.loads(errors[0])
    assert DEBUG_LOGS_VARIABLE in message and repr(directive) in message, message
    assert level == "0"


# ---------------------------------------------------------------- Python logging


def test_python_logging_at_debug_shows_what_the_crt_did(s3):
    s3.put("k", b"x" * 1000)
    result = run(
        """
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logging.basicConfig(level=logging.DEBUG, handlers=[Keep()])
    assert get("k") == b"x" * 1000
    _logging.flush(None)
    native = [r for r in records if r.name.startswith(("s3torchconnector.crt", "s3torchconnector.native"))]
    print(json.dumps({
        "names": sorted({r.name for r in native}),
        "levels": sorted({r.levelname for r in native}),
        "native_threads": all(r.threadName == f"native-{r.thread}" for r in native),
        "level": _logging.native_log_level(),
    }))
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert "s3torchconnector.crt.S3MetaRequest" in seen["names"], seen
    assert "s3torchconnector.native" in seen["names"], seen
    assert "DEBUG" in seen["levels"] and "TRACE" not in seen["levels"]
    assert seen["native_threads"] and seen["level"] == "debug"
    assert not LINE.search(result.stderr), "the variables are unset: nothing goes to stderr"


def test_python_trace_level_and_one_logger_configured(s3):
    s3.put("k", b"x" * 1000)
    result = run(
        """
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    meta = logging.getLogger("s3torchconnector.crt.S3MetaRequest")
    meta.setLevel(_logging.TRACE)
    meta.addHandler(Keep())
    assert get("k") == b"x" * 1000
    _logging.flush(None)
    print(json.dumps(sorted({(r.name, r.levelname) for r in records})))
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr
    seen = {tuple(pair) for pair in json.loads(result.stdout)}
    assert {name for name, _ in seen} == {"s3torchconnector.crt.S3MetaRequest"}, seen
    assert ("s3torchconnector.crt.S3MetaRequest", "TRACE") in seen, seen


def test_nothing_is_logged_when_nothing_asks(s3):
    s3.put("k", b"x" * 1000)
    result = run(
        """
    logging.basicConfig(level=logging.INFO)  # an application's usual setting: not enough on its own
    assert get("k") == b"x" * 1000
    print(_native.log_level(), _logging.native_log_level())
    records, dropped, _ = _native.take_log_records(False)
    print(len(records), dropped)
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["0 off", "0 0"]
    assert "s3torchconnector" not in result.stderr and "awscrt" not in result.stderr, result.stderr


def test_overflow_is_dropped_and_counted_not_blocking(s3):
    s3.put("k", b"x" * 1000)
    result = run(
        """
    import threading
    release = threading.Event()
    warnings = []

    class Slow(logging.Handler):
        def emit(self, record):
            release.wait()  # Python takes nothing in while the GETs log at trace

    class Keep(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())

    crt = logging.getLogger("s3torchconnector.crt")
    crt.setLevel(_logging.TRACE)
    crt.addHandler(Slow())
    logging.getLogger("s3torchconnector.native").addHandler(Keep())
    for _ in range(100):
        assert get("k") == b"x" * 1000
    release.set()
    _logging.flush(None)
    print(json.dumps(warnings))
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr
    warnings = json.loads(result.stdout)
    assert warnings and all("native log records were dropped" in w for w in warnings), warnings


# ---------------------------------------------------------------- processes


def test_forked_dataloader_workers_with_logging_on(s3, monkeypatch, tmp_path):
    for i in range(8):
        s3.put(f"obj/{i}", bytes([i]) * 5000)
    monkeypatch.setenv(DEBUG_LOGS_VARIABLE, "debug")
    monkeypatch.setenv(LOGS_DIR_VARIABLE, str(tmp_path / "logs"))
    result = run(
        """
    import torch
    from torch.utils.data import DataLoader, Dataset

    names = []

    class Keep(logging.Handler):
        def emit(self, record):
            names.append(record.name)

    logging.basicConfig(level=logging.DEBUG, handlers=[Keep()])

    class Objects(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            data = get(f"obj/{i}")
            _logging.flush(None)
            assert any(n.startswith("s3torchconnector.crt.") for n in names), "no CRT record in the worker"
            return torch.tensor(list(data[:1]) + [len(data), os.getpid()])

    assert get("obj/0")[:1] == bytes([0])  # the parent's CRT threads run, and log, before the fork
    loader = DataLoader(Objects(), batch_size=None, num_workers=2, multiprocessing_context="fork")
    rows = [row.tolist() for row in loader]
    assert [row[:2] for row in rows] == [[i, 5000] for i in range(8)], rows
    print(json.dumps(sorted({row[2] for row in rows})))
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr
    workers = json.loads(result.stdout)
    assert len(workers) == 2
    text = "".join((tmp_path / "logs" / name).read_text() for name in os.listdir(tmp_path / "logs"))
    for pid in workers:
        assert f"process {pid} was forked from process" in text, "a worker's native messages are missing"


def test_forks_while_crt_threads_log(s3, monkeypatch):
    # Forks land while other threads are in the logger (formatting, writing, queueing): every child must
    # still be able to log and exit.
    s3.put("k", b"x" * 1000)
    monkeypatch.setenv(DEBUG_LOGS_VARIABLE, "trace")
    result = run(
        """
    import threading
    logging.basicConfig(level=_logging.TRACE, handlers=[logging.NullHandler()])
    stop = threading.Event()
    assert get("k") == b"x" * 1000  # the native client exists before the threads and forks start

    def busy():
        while not stop.is_set():
            get("k")

    threads = [threading.Thread(target=busy) for _ in range(3)]
    for thread in threads:
        thread.start()
    failures = 0
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            try:
                ok = get("k") == b"x" * 1000
                _logging.flush(None)
            except BaseException:
                ok = False
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        failures += status != 0
    stop.set()
    for thread in threads:
        thread.join()
    print(failures)
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["0"]


def test_exit_with_requests_in_flight_and_logging_on(s3, monkeypatch):
    # The CRT keeps logging while the interpreter shuts down, with the drain thread waiting for records.
    s3.put("big", os.urandom(20 * 1024 * 1024))
    monkeypatch.setenv(DEBUG_LOGS_VARIABLE, "trace")
    result = run(
        """
    logging.basicConfig(level=_logging.TRACE, handlers=[logging.NullHandler()])
    whole = client._get_object_stream(bucket, "big")
    streaming = client._get_object_stream(bucket, "big", 0, None)
    assert len(streaming.next_chunk()) > 0
    writer = client.put_object(bucket, "unfinished")
    writer.write(b"x" * (12 * 1024 * 1024))
    print("exiting with requests and the log drain in flight", flush=True)
    """,
        s3,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "exiting" in result.stdout


# ---------------------------------------------------------------- the filter syntax


@pytest.mark.parametrize(
    "text, expected",
    [
        ("info", {"awscrt::S3Client": 4, "s3torchconnectorclient": 4, "mountpoint_s3_client": 4}),
        ("DEBUG", {"awscrt::S3Client": 5}),
        ("debug,awscrt=off", {"awscrt::S3Client": 0, "awscrt::dns": 0, "s3torchconnectorclient": 5}),
        ("trace,awscrt=error", {"awscrt::S3Client": 2, "s3torchconnectorclient": 6}),
        ("awscrt=warn", {"awscrt::S3Client": 3, "s3torchconnectorclient": 0}),
        (
            "warn,awscrt=off,awscrt::S3MetaRequest=debug",
            {"awscrt::S3MetaRequest": 5, "awscrt::S3Client": 0, "s3torchconnectorclient": 3},
        ),
        ("off", {"awscrt::S3Client": 0, "s3torchconnectorclient": 0}),
        ("3", {"awscrt::S3Client": 4}),
        ("awscrt", {"awscrt::S3Client": 6, "s3torchconnectorclient": 0}),
        (" debug , mountpoint_s3_client=info ", {"awscrt::S3Client": 5}),
        ("", {"awscrt::S3Client": 2}),
        ("info,[request{id}]=trace", {"awscrt::S3Client": 4}),
    ],
)
def test_filter_syntax(text, expected):
    log_filter = parse_filter(text)
    assert {target: log_filter.level_for(target) for target in expected} == expected


@pytest.mark.parametrize(
    "text", ["debug,awscrt=loud", "debug,awscrt=", "a b", "awscrt=debug=x", "info,[unclosed=debug"]
)
def test_bad_filter_syntax(text):
    with pytest.raises(ValueError, match=DEBUG_LOGS_VARIABLE):
        parse_filter(text)


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({}, {}),  # the root at WARNING
        ({"": logging.INFO}, {}),  # an application's root at INFO: the CRT's INFO chatter stays out
        ({"": logging.DEBUG}, {"awscrt::S3Client": 5, "s3torchconnectorclient": 5}),
        ({"s3torchconnector": logging.INFO}, {"awscrt::S3Client": 4, "s3torchconnectorclient": 4}),
        ({"s3torchconnector.crt.dns": TRACE}, {"awscrt::S3Client": 3, "awscrt::dns": 6}),  # the rest: WARNING
        (
            {"": logging.DEBUG, "s3torchconnector.crt": logging.CRITICAL},
            {"awscrt::S3Client": 1, "awscrt::dns": 1, "s3torchconnectorclient": 5},
        ),
    ],
)
def test_python_levels_follow_the_loggers(monkeypatch, settings, expected):
    from s3torchconnector import _logging

    for name, level in settings.items():
        monkeypatch.setattr(logging.getLogger(name or None), "level", level)
    logging.Logger.manager._clear_cache()
    try:
        levels = _logging._python_levels(["awscrt::S3Client", "awscrt::dns", "s3torchconnectorclient"])
    finally:
        monkeypatch.undo()
        logging.Logger.manager._clear_cache()
    assert {target: levels.get(target, 0) for target in expected} == expected


def test_trace_level_is_registered():
    assert TRACE == 5 and logging.getLevelName(TRACE) == "TRACE"
