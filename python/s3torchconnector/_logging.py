"""Logs of the native layer: the AWS Common Runtime (CRT) and this package's C++ module.

They reach two places, each with its own levels:

* ``S3_TORCH_CONNECTOR_DEBUG_LOGS``, as in the original: a filter in the syntax of Rust's
  ``tracing`` EnvFilter (``info``, ``debug,awscrt=off``, ``trace,awscrt=error``): an optional
  default level, then comma-separated ``target=level`` directives; the most specific target
  that is a prefix of a record's target decides. Levels: off, error, warn, info, debug, trace.
  Lines go to stderr, or, when ``S3_TORCH_CONNECTOR_LOGS_DIR_PATH`` names a folder, to files
  there named ``s3torchconnectorclient.log.YYYY-MM-DD-HH`` (a new one each hour, UTC).
  Targets: ``awscrt`` is every CRT log subject, ``awscrt::<subject>`` one of them (e.g.
  ``awscrt::S3MetaRequest``, ``awscrt::http-connection``, ``awscrt::dns``), and
  ``s3torchconnectorclient`` this package's native messages. The original's other targets,
  ``mountpoint_s3_client`` and ``mountpoint_s3_crt`` (its Rust crates), are accepted and match
  nothing here: the CRT's S3 subjects (``awscrt::S3*``) carry what they logged.
* Python ``logging``: the records of CRT subject X go to the logger ``s3torchconnector.crt.X``
  (``s3torchconnector.crt.S3MetaRequest``, ...), this package's native messages to
  ``s3torchconnector.native``. They flow when such a logger is enabled for DEBUG
  (``logging.basicConfig(level=logging.DEBUG)`` is enough), or for INFO by a level set on this
  package's loggers (``logging.getLogger("s3torchconnector").setLevel(logging.INFO)``): a root
  logger at INFO alone does not turn them on, as the CRT logs some twenty INFO lines per request.
  CRT trace records use ``TRACE`` (5).
  Records carry the time they were logged and the native thread id (``record.thread``).

When it is read: the variables once per process, the Python loggers' levels each time a native
client is made (an S3Client's first request in a process). Until something asks for logs, no
native logger is installed, and nothing is formatted.

The native logger never takes the GIL: records for Python wait in a bounded queue (beyond it they
are dropped, and a warning says how many), which a daemon thread drains into ``logging``.
"""

import atexit
import logging
import os
import re
import threading
import time
from typing import Dict, List, Optional, Tuple

from . import _native

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

DEBUG_LOGS_VARIABLE = "S3_TORCH_CONNECTOR_DEBUG_LOGS"
LOGS_DIR_VARIABLE = "S3_TORCH_CONNECTOR_LOGS_DIR_PATH"
LOG_FILE_PREFIX = "s3torchconnectorclient.log"

# The CRT's levels (aws_log_level).
_CRT_NONE, _CRT_FATAL, _CRT_ERROR, _CRT_WARN, _CRT_INFO, _CRT_DEBUG, _CRT_TRACE = range(7)
_FILTER_LEVELS = {
    "off": _CRT_NONE,
    "error": _CRT_ERROR,
    "warn": _CRT_WARN,
    "info": _CRT_INFO,
    "debug": _CRT_DEBUG,
    "trace": _CRT_TRACE,
}
# tracing also takes 0 (off) to 5 (trace).
_FILTER_LEVELS.update(
    {str(i): level for i, level in enumerate((_CRT_NONE, _CRT_ERROR, _CRT_WARN, _CRT_INFO, _CRT_DEBUG, _CRT_TRACE))}
)
_LEVEL_NAMES = {
    _CRT_NONE: "off",
    _CRT_FATAL: "error",
    _CRT_ERROR: "error",
    _CRT_WARN: "warn",
    _CRT_INFO: "info",
    _CRT_DEBUG: "debug",
    _CRT_TRACE: "trace",
}
_PYTHON_LEVELS = {
    _CRT_FATAL: logging.CRITICAL,
    _CRT_ERROR: logging.ERROR,
    _CRT_WARN: logging.WARNING,
    _CRT_INFO: logging.INFO,
    _CRT_DEBUG: logging.DEBUG,
    _CRT_TRACE: TRACE,
}

_TARGET = re.compile(r"[\w:-]+\Z", re.ASCII)
_SPAN_DIRECTIVE = re.compile(r"[\w:-]*\[[^\[\]]*\](?:=(?P<level>.*))?\Z", re.ASCII)

CRT_TARGET = "awscrt"
NATIVE_TARGET = "s3torchconnectorclient"
CRT_LOGGER = "s3torchconnector.crt"
NATIVE_LOGGER = "s3torchconnector.native"


class LogFilter:
    """A parsed S3_TORCH_CONNECTOR_DEBUG_LOGS value."""

    def __init__(self, default: Optional[int], targets: Dict[str, int]):
        self.default = default  # None: targets no directive names are off
        self.targets = targets

    def level_for(self, target: str) -> int:
        """The CRT level for a record target: the longest directive target it starts with, else the default."""
        best = None
        for name in self.targets:
            if target.startswith(name) and (best is None or len(name) > len(best)):
                best = name
        if best is not None:
            return self.targets[best]
        return _CRT_NONE if self.default is None else self.default


def parse_filter(text: str, variable: str = DEBUG_LOGS_VARIABLE) -> LogFilter:
    """Parses a filter; a ValueError names the variable and the directive it could not use."""

    def bad(directive: str, reason: str) -> ValueError:
        return ValueError(
            f"{variable}={text!r} is not a valid log filter: {reason} in directive {directive!r}. "
            "Give a level (off, error, warn, info, debug, trace) and/or comma-separated target=level "
            "directives, e.g. 'debug,awscrt=off'"
        )

    def level_of(directive: str, level_text: str) -> int:
        level = _FILTER_LEVELS.get(level_text.strip().lower())
        if level is None:
            raise bad(directive, f"unknown level {level_text.strip()!r}")
        return level

    default: Optional[int] = None
    targets: Dict[str, int] = {}
    spans = 0
    for raw in text.split(","):
        directive = raw.strip()
        if not directive:
            continue
        if "[" in directive or "{" in directive:
            # Span directives enable records inside a span; there are no spans here, so they match nothing.
            match = _SPAN_DIRECTIVE.match(directive)
            if match is None:
                raise bad(directive, "a malformed span directive")
            if match.group("level") is not None:
                level_of(directive, match.group("level"))
            spans += 1
            continue
        target, equals, level_text = directive.partition("=")
        target = target.strip()
        if not equals:
            if directive.lower() in _FILTER_LEVELS:
                default = _FILTER_LEVELS[directive.lower()]
                continue
            if not _TARGET.match(directive):
                raise bad(directive, "neither a level nor a target (letters, digits, '_', '-' and '::')")
            targets[directive] = _CRT_TRACE  # a target alone: all of its records
            continue
        if not target:
            raise bad(directive, "no target before '='")
        if not _TARGET.match(target):
            raise bad(directive, f"{target!r} is not a target (letters, digits, '_', '-' and '::')")
        targets[target] = level_of(directive, level_text)
    if default is None and not targets and not spans:
        default = _CRT_ERROR  # an empty filter, as tracing reads it
    return LogFilter(default, targets)


def python_logger_name(target: str) -> str:
    """The Python logger that receives a native target's records."""
    if target == NATIVE_TARGET:
        return NATIVE_LOGGER
    if target == CRT_TARGET:
        return CRT_LOGGER
    if target.startswith(CRT_TARGET + "::"):
        return f"{CRT_LOGGER}.{target[len(CRT_TARGET) + 2 :]}"
    return f"{NATIVE_LOGGER}.{target}"


def native_log_level() -> str:
    """How detailed the native logs are now, over all targets and both destinations:
    'off' (no native logger runs; nothing is formatted) or error, warn, info, debug, trace."""
    return _LEVEL_NAMES[_native.log_level()]


# Per process state. A forked child inherits the native levels with these, and starts its own drain
# when it makes its native client.
_lock = threading.Lock()
_targets: Optional[List[str]] = None
_writer_configured = False
_applied_python_levels: Optional[Dict[str, int]] = None
_drain_thread: Optional[threading.Thread] = None
_emitted = threading.Condition()
_emitted_batch = 0  # the last batch the drain thread has emitted
_flush_registered = False
_loggers: Dict[str, logging.Logger] = {}


def _after_fork_in_child() -> None:
    global _lock, _emitted, _emitted_batch, _drain_thread
    # Another thread may have held these while this process was forked; the drain thread was not copied
    # (cpp/fork.h, rule 3).
    _lock = threading.Lock()
    _emitted = threading.Condition()
    _emitted_batch = 0
    _drain_thread = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def configure() -> None:
    """Applies the variables (first call in a process) and the Python loggers' levels (every call).
    Called before each native client is made. Raises ValueError for a bad variable."""
    global _targets, _writer_configured, _applied_python_levels
    with _lock:
        if _targets is None:
            _targets = list(_native.log_targets())
        if not _writer_configured:
            _configure_writer(_targets)
            _writer_configured = True
        levels = _python_levels(_targets)
        if levels != _applied_python_levels:
            _native.set_log_levels("python", levels)
            _applied_python_levels = levels
        if levels:
            _start_drain()


def _configure_writer(targets: List[str]) -> None:
    text = os.environ.get(DEBUG_LOGS_VARIABLE)
    if text is None:
        return
    log_filter = parse_filter(text)
    directory = os.environ.get(LOGS_DIR_VARIABLE) or ""
    if directory:
        try:
            os.makedirs(directory, exist_ok=True)
            if not os.access(directory, os.W_OK | os.X_OK):
                raise PermissionError("not writable")
        except OSError as error:
            raise ValueError(f"{LOGS_DIR_VARIABLE}={directory!r} cannot hold log files: {error}") from None
    _native.set_log_directory(os.path.abspath(directory) if directory else "")
    _native.set_log_levels("writer", {target: log_filter.level_for(target) for target in targets})


def _existing_logger(name: str) -> Tuple[logging.Logger, bool]:
    """The logger `name` if it exists, else its nearest existing ancestor (whose levels it would inherit)."""
    manager = logging.Logger.manager
    exact = True
    while name:
        found = manager.loggerDict.get(name)
        if isinstance(found, logging.Logger):
            return found, exact
        name = name.rpartition(".")[0]
        exact = False
    return logging.getLogger(), False


def _level_from_root(logger: logging.Logger) -> bool:
    """Whether the logger's level is the root logger's: no logger of this package was given one."""
    current: Optional[logging.Logger] = logger
    while current is not None and current.level == logging.NOTSET:
        current = current.parent
    return current is None or current is logging.getLogger()


def _python_levels(targets: List[str]) -> Dict[str, int]:
    """The CRT level per target that the Python loggers would let through; empty (Python gets nothing)
    unless one wants DEBUG, or was set to INFO on this package's loggers. An application's root logger
    at INFO is not enough: the CRT logs some twenty INFO lines per request."""
    levels = {}
    for target in targets:
        logger, exact = _existing_logger(python_logger_name(target))
        level = _CRT_NONE
        if not (exact and logger.disabled):
            for crt_level in (_CRT_TRACE, _CRT_DEBUG, _CRT_INFO, _CRT_WARN, _CRT_ERROR, _CRT_FATAL):
                if logger.isEnabledFor(_PYTHON_LEVELS[crt_level]):
                    level = crt_level
                    break
        if level == _CRT_INFO and _level_from_root(logger):
            level = _CRT_WARN
        levels[target] = level
    if max(levels.values(), default=_CRT_NONE) < _CRT_INFO:
        return {}
    return {target: level for target, level in levels.items() if level != _CRT_NONE}


def _start_drain() -> None:
    global _drain_thread, _flush_registered
    if _drain_thread is not None:
        return
    _drain_thread = threading.Thread(target=_drain_forever, name="s3torchconnector-logs", daemon=True)
    _drain_thread.start()
    if not _flush_registered:
        # Records still queued at exit are emitted by the exiting thread (before logging's own shutdown).
        atexit.register(flush, 1.0)
        _flush_registered = True


def _drain_forever() -> None:
    global _emitted_batch
    while True:
        try:
            records, dropped, batch = _native.take_log_records(True)
        except Exception:  # not expected; never spin
            time.sleep(1)
            continue
        try:
            _emit(records, dropped)
        except Exception:  # a failing handler must not end the drain
            pass
        with _emitted:
            _emitted_batch = batch
            _emitted.notify_all()


def flush(timeout: Optional[float] = 10.0) -> None:
    """Emits the native records waiting for Python logging, and waits (up to `timeout` s; None: as long as
    it takes) for those the drain thread has taken already: what was logged before the call has reached
    the handlers."""
    records, dropped, batch = _native.take_log_records(False)
    drain = _drain_thread
    if drain is not None and drain is not threading.current_thread() and drain.is_alive():
        with _emitted:  # the older records first
            _emitted.wait_for(lambda: _emitted_batch >= batch, timeout)
    _emit(records, dropped)


def _logger(target: str) -> logging.Logger:
    logger = _loggers.get(target)
    if logger is None:
        logger = _loggers[target] = logging.getLogger(python_logger_name(target))
    return logger


def _emit(records, dropped: int) -> None:
    for target, crt_level, created, thread, message in records:
        logger = _logger(target)
        level = _PYTHON_LEVELS.get(crt_level, logging.ERROR)
        if not logger.isEnabledFor(level):
            continue
        record = logger.makeRecord(logger.name, level, "(native)", 0, message, (), None)
        # When and where it was logged, not when it was drained.
        record.created = created
        record.msecs = int((created - int(created)) * 1000) + 0.0
        record.relativeCreated = (created - logging._startTime) * 1000  # type: ignore[attr-defined]
        record.thread = thread
        record.threadName = f"native-{thread}"
        logger.handle(record)
    if dropped:
        logging.getLogger(NATIVE_LOGGER).warning(
            "%d native log records were dropped: more were logged than Python logging took in time", dropped
        )
