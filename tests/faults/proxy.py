"""A test-only fault-injecting HTTP proxy on 127.0.0.1, between the client under test and moto.

Each request from the client is read whole (headers plus a Content-Length or chunked body, forwarded
byte for byte, aws-chunked trailers included), matched against the rules in order, and then either
forwarded to the upstream server on a fresh connection or answered with a fault:

- ``error(503, "SlowDown")`` / ``error(500, "InternalError")``: an S3 XML error body, keep-alive;
- ``reset()``: the connection is reset (RST) before any response byte;
- ``truncate(n)``: the upstream response's headers (full Content-Length) and ``n`` body bytes, then
  the connection is closed;
- ``stall(seconds)``: nothing is sent for ``seconds`` (or until the proxy stops), then a reset.
- ``trickle(bytes_per_second, seconds)``: the upstream response's headers, then its body at
  ``bytes_per_second`` for at most ``seconds`` (or until the client gives up), then a reset.
- ``corrupt()``: the upstream response with one byte of its body flipped, length and headers kept.
- ``rewrite(change)``: the upstream response as ``change(status, headers, body)`` returns it, a
  ``(status, headers, body)`` triple: another server's way of answering (root names, ETag quoting).
- ``synthetic(size)``: answered here, never upstream, as an object of ``size`` bytes of
  ``synthetic_bytes`` (Range honoured): a large object at no cost to the upstream server.

Requests go upstream as sent, but for ``x-amz-checksum-mode``, upper-cased: S3 takes any case (the
CRT sends "enabled"), moto answers only "ENABLED".

Any fault may carry a ``before`` hook, run (with the request) before the fault or the forward; it
may block, holding that request back (``proxy.wait_for`` makes a gate of it). Client connections
are HTTP/1.1 keep-alive. Every request is listed in ``proxy.received()`` as soon as it has been
read, and logged in ``proxy.log`` once answered.
"""

import hashlib
import http.client
import socket
import struct
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from loopback_server import LoopbackServer

_SOCKET_TIMEOUT = 60.0  # no proxy thread waits on a peer longer than this
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}
_SYNTHETIC_PERIOD = 1024 * 1024 + 7  # synthetic_bytes repeat with this period, off any power of two
# One period twice over, so that a piece starting anywhere in the period can be sliced out of it whole.
_SYNTHETIC_BLOCK = hashlib.shake_256(b"fault-proxy synthetic object").digest(_SYNTHETIC_PERIOD) * 2


@dataclass
class Request:
    """What a rule sees of one request."""

    method: str
    target: str  # as sent: path plus query, percent-encoded
    path: str  # percent-decoded path
    raw_path: str  # path as sent, still percent-encoded
    query: Dict[str, str]
    headers: Dict[str, str]  # lower-case names
    body_length: int
    attempt: int  # how many earlier requests had the same method, target and Range
    index: int  # position among all requests the proxy received
    trailers: Dict[str, str] = field(default_factory=dict)  # of an aws-chunked body, lower-case names

    @property
    def range(self) -> Optional[str]:
        return self.headers.get("range")

    @property
    def range_start(self) -> Optional[int]:
        value = self.range
        if not value or not value.startswith("bytes="):
            return None
        first = value[len("bytes=") :].split("-", 1)[0]
        return int(first) if first.isdigit() else None

    @property
    def range_length(self) -> Optional[int]:
        """Bytes asked for by a closed range ("bytes=0-99" asks for 100), else None."""
        value = self.range
        if not value or not value.startswith("bytes="):
            return None
        first, _, last = value[len("bytes=") :].partition("-")
        return int(last) - int(first) + 1 if first.isdigit() and last.isdigit() else None

    def is_get_of(self, key: str) -> bool:
        return self.method == "GET" and self.path.endswith("/" + key) and not self.query

    def is_upload_part(self) -> bool:
        return self.method == "PUT" and "partNumber" in self.query and "uploadId" in self.query


@dataclass
class Fault:
    kind: str  # "forward", "error", "reset", "truncate", "stall", "trickle", "corrupt", "rewrite", "synthetic"
    status: int = 0
    bytes_per_second: int = 0
    code: str = ""
    after_bytes: int = 0
    seconds: float = 0.0
    size: int = 0  # of a synthetic object
    forward_first: bool = False  # for "reset": send the request upstream before resetting
    before: Optional[Callable[[Request], None]] = None
    change: Optional[Callable[[int, list, bytes], tuple]] = None  # of a "rewrite"


def forward(before: Optional[Callable[[Request], None]] = None) -> Fault:
    return Fault("forward", before=before)


def error(status: int = 503, code: str = "SlowDown") -> Fault:
    return Fault("error", status=status, code=code)


def reset(forward_first: bool = False) -> Fault:
    return Fault("reset", forward_first=forward_first)


def truncate(after_bytes: int) -> Fault:
    return Fault("truncate", after_bytes=after_bytes)


def stall(seconds: float) -> Fault:
    return Fault("stall", seconds=seconds)


def trickle(bytes_per_second: int, seconds: float) -> Fault:
    return Fault("trickle", bytes_per_second=bytes_per_second, seconds=seconds)


def corrupt(before: Optional[Callable[[Request], None]] = None) -> Fault:
    return Fault("corrupt", before=before)


def rewrite(change: Callable[[int, list, bytes], tuple]) -> Fault:
    return Fault("rewrite", change=change)


def synthetic(size: int) -> Fault:
    return Fault("synthetic", size=size)


def synthetic_bytes(start: int, end: int) -> bytes:
    """Bytes [start, end) of every synthetic object."""
    out = bytearray()
    while start < end:
        offset = start % _SYNTHETIC_PERIOD
        piece = _SYNTHETIC_BLOCK[offset : offset + min(end - start, _SYNTHETIC_PERIOD)]
        out += piece
        start += len(piece)
    return bytes(out)


@dataclass
class Rule:
    """Applies ``fault`` to requests for which ``match(request)`` is true and ``when(n)`` is true,
    n counting this rule's matches from 0; at most ``limit`` times when given."""

    match: Callable[[Request], bool]
    fault: Fault
    when: Callable[[int], bool] = lambda n: True
    limit: Optional[int] = None
    matched: int = 0
    fired: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, request: Request) -> Optional[Fault]:
        if not self.match(request):
            return None
        with self.lock:
            n = self.matched
            self.matched += 1
            if (self.limit is None or self.fired < self.limit) and self.when(n):
                self.fired += 1
                return self.fault
        return None


@dataclass
class LogEntry:
    request: Request
    action: str
    status: int = 0


_ERROR_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "InternalError": "We encountered an internal error. Please try again.",
}


def error_body(code: str, resource: str) -> bytes:
    message = _ERROR_MESSAGES.get(code, "Injected fault.")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{resource}</Resource><RequestId>FAULTPROXY0000001</RequestId></Error>"
    ).encode()


class FaultProxy(LoopbackServer):
    def __init__(self, upstream: str):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.rules: List[Rule] = []
        self.log: List[LogEntry] = []
        self._received: List[Request] = []
        self._attempts: Dict[tuple, int] = {}
        super().__init__("fault-proxy")
        self._arrival = threading.Condition(self._lock)
        self.url = f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ configuration

    def add(self, match: Callable[[Request], bool], fault: Fault, *, when=None, limit=None) -> Rule:
        rule = Rule(match, fault, when or (lambda n: True), limit)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def requests(self, predicate: Callable[[Request], bool] = lambda r: True) -> List[LogEntry]:
        with self._lock:
            return [entry for entry in self.log if predicate(entry.request)]

    def received(self, predicate: Callable[[Request], bool] = lambda r: True) -> List[Request]:
        """Requests read so far, answered or not (a held or stalled one is here, not yet in the log)."""
        with self._lock:
            return [request for request in self._received if predicate(request)]

    def wait_for(self, predicate: Callable[[Request], bool], count: int, timeout: float) -> bool:
        """Waits until ``count`` received requests match; False if they have not within ``timeout``."""
        with self._arrival:
            return self._arrival.wait_for(
                lambda: sum(1 for r in self._received if predicate(r)) >= count or self._stopping.is_set(),
                timeout,
            )

    def _on_stop(self, connection: socket.socket) -> None:
        with self._arrival:
            self._arrival.notify_all()
        _hard_close(connection)

    # ------------------------------------------------------------------ one client connection

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(_SOCKET_TIMEOUT)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(connection)
        reader = connection.makefile("rb")
        graceful = True  # an orderly close (FIN) unless a fault asks for a reset
        try:
            while not self._stopping.is_set():
                head = _read_head(reader)
                if head is None:
                    return
                request_line, header_list = head
                method, target, _version = request_line.split(" ", 2)
                headers = {name.lower(): value for name, value in header_list}
                if headers.get("expect", "").lower() == "100-continue":
                    connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    header_list = [(n, v) for n, v in header_list if n.lower() != "expect"]
                body = _read_body(reader, headers)
                request = self._describe(method, target, headers, body)
                fault = self._decide(request)
                if fault is not None and fault.before is not None:
                    fault.before(request)
                kind = fault.kind if fault is not None else "forward"
                if kind == "error":
                    payload = error_body(fault.code, request.raw_path)
                    self._record(request, f"error {fault.status} {fault.code}", fault.status)
                    _send_response(
                        connection,
                        fault.status,
                        "Service Unavailable" if fault.status == 503 else "Internal Server Error",
                        [("Content-Type", "application/xml"), ("x-amz-request-id", "FAULTPROXY0000001")],
                        b"" if method == "HEAD" else payload,
                        len(payload),
                    )
                    continue
                if kind == "reset":
                    if fault.forward_first:
                        self._upstream(method, target, header_list, body)
                    self._record(request, "reset")
                    graceful = False
                    return
                if kind == "stall":
                    self._record(request, f"stall {fault.seconds}s")
                    self._stopping.wait(fault.seconds)
                    graceful = False
                    return
                if kind == "synthetic":
                    status, reason, response_headers, response_body = _synthetic_response(request, fault.size)
                    self._record(request, f"synthetic {fault.size} bytes", status)
                    _send_response(
                        connection,
                        status,
                        reason,
                        response_headers,
                        b"" if method == "HEAD" else response_body,
                        len(response_body),
                        method=method,
                    )
                    continue
                status, reason, response_headers, response_body = self._upstream(method, target, header_list, body)
                if kind == "corrupt" and response_body:
                    flipped = bytearray(response_body)
                    flipped[len(flipped) // 2] ^= 0xFF  # one byte; the length and headers are kept
                    response_body = bytes(flipped)
                if kind == "rewrite":
                    status, response_headers, response_body = fault.change(status, response_headers, response_body)
                if kind == "truncate":
                    self._record(request, f"truncate after {fault.after_bytes} bytes", status)
                    _send_response(
                        connection,
                        status,
                        reason,
                        response_headers,
                        response_body[: fault.after_bytes],
                        len(response_body),
                        method=method,
                        truncated=True,
                    )
                    return
                if kind == "trickle":
                    self._record(request, f"trickle {fault.bytes_per_second} B/s", status)
                    self._trickle(connection, status, reason, response_headers, response_body, fault)
                    graceful = False
                    return
                self._record(request, kind if kind in ("corrupt", "rewrite") else "forward", status)
                _send_response(
                    connection, status, reason, response_headers, response_body, len(response_body), method=method
                )
        except (OSError, ValueError, http.client.HTTPException):
            graceful = False
            return
        finally:
            try:
                reader.close()
            except OSError:
                pass
            if graceful:
                _soft_close(connection)
            else:
                _hard_close(connection)
            self._untrack(connection)

    def _trickle(self, connection, status, reason, headers, body, fault: Fault) -> None:
        _send_response(connection, status, reason, headers, b"", len(body))
        piece = max(1, fault.bytes_per_second // 10)  # ten sends a second
        sent = 0
        while sent < len(body) and sent < fault.bytes_per_second * fault.seconds:
            if self._stopping.wait(0.1):
                return
            connection.sendall(body[sent : sent + piece])  # raises once the client has hung up
            sent += piece

    def _describe(self, method: str, target: str, headers: Dict[str, str], body: bytes) -> Request:
        split = urllib.parse.urlsplit(target)
        query = {k: v for k, v in urllib.parse.parse_qsl(split.query, keep_blank_values=True)}
        identity = (method, target, headers.get("range"))
        aws_chunked = "aws-chunked" in headers.get("content-encoding", "").lower()
        with self._arrival:
            attempt = self._attempts.get(identity, 0)
            self._attempts[identity] = attempt + 1
            request = Request(
                method=method,
                target=target,
                path=urllib.parse.unquote(split.path),
                raw_path=split.path,
                query=query,
                headers=headers,
                body_length=len(body),
                attempt=attempt,
                index=len(self.log),
                trailers=_aws_chunked_trailers(body) if aws_chunked else {},
            )
            self._received.append(request)
            self._arrival.notify_all()
        return request

    def _decide(self, request: Request) -> Optional[Fault]:
        with self._lock:
            rules = list(self.rules)
        for rule in rules:
            fault = rule.decide(request)
            if fault is not None:
                return fault
        return None

    def _record(self, request: Request, action: str, status: int = 0) -> None:
        with self._lock:
            self.log.append(LogEntry(request, action, status))

    def _upstream(self, method, target, header_list, body):
        upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=_SOCKET_TIMEOUT)
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in header_list:
                if name.lower() == "x-amz-checksum-mode":
                    value = value.upper()  # see the module's docstring
                upstream.putheader(name, value)
            upstream.endheaders(body if body else None)
            response = upstream.getresponse()
            payload = response.read()
            return response.status, response.reason, response.getheaders(), payload
        finally:
            upstream.close()


# ---------------------------------------------------------------------- wire helpers


def _read_head(reader):
    line = reader.readline(65537)
    while line in (b"\r\n", b"\n"):
        line = reader.readline(65537)
    if not line:
        return None
    request_line = line.decode("latin-1").rstrip("\r\n")
    header_list = []
    while True:
        line = reader.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        header_list.append((name.strip(), value.strip()))
    return request_line, header_list


def _read_exactly(reader, n: int) -> bytes:
    data = reader.read(n)
    if data is None or len(data) != n:
        raise ValueError("the client closed the connection inside a body")
    return data


def _read_body(reader, headers: Dict[str, str]) -> bytes:
    """The body exactly as sent: Content-Length bytes, or the raw chunked encoding with trailers."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw = bytearray()
        while True:
            size_line = reader.readline(65537)
            raw += size_line
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = reader.readline(65537)
                    raw += line
                    if line in (b"\r\n", b"\n", b""):
                        return bytes(raw)
            raw += _read_exactly(reader, size + 2)
    length = int(headers.get("content-length", "0") or 0)
    return _read_exactly(reader, length) if length else b""


def _aws_chunked_trailers(body: bytes) -> Dict[str, str]:
    """The trailing headers of an aws-chunked body: chunks ("size[;extensions]" CRLF data CRLF), a
    chunk of size 0, then the trailers, one per line."""
    position = 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            return {}
        size = int(body[position:line_end].split(b";", 1)[0].strip() or b"0", 16)
        position = line_end + 2
        if size == 0:
            break
        position += size + 2
    trailers = {}
    for line in body[position:].split(b"\r\n"):
        name, colon, value = line.decode("latin-1").partition(":")
        if colon:
            trailers[name.strip().lower()] = value.strip()
    return trailers


def _synthetic_response(request: Request, size: int):
    """(status, reason, headers, body) of a GET or HEAD of a synthetic object of ``size`` bytes."""
    etag = '"' + hashlib.md5(f"synthetic {size}".encode()).hexdigest() + '"'
    headers = [
        ("ETag", etag),
        ("Accept-Ranges", "bytes"),
        ("Content-Type", "application/octet-stream"),
        ("Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ("x-amz-request-id", "FAULTPROXYSYNTH01"),
    ]
    value = request.range
    if not value or not value.startswith("bytes="):
        return 200, "OK", headers + [("Content-Length", str(size))], synthetic_bytes(0, size)
    first, _, last = value[len("bytes=") :].partition("-")
    start = int(first) if first else max(0, size - int(last))
    end = min(size, int(last) + 1) if first and last else size  # exclusive
    if start >= size:
        return 416, "Requested Range Not Satisfiable", headers + [("Content-Range", f"bytes */{size}")], b""
    headers.append(("Content-Range", f"bytes {start}-{end - 1}/{size}"))
    return 206, "Partial Content", headers, synthetic_bytes(start, end)


def _send_response(connection, status, reason, headers, body, content_length, *, method="GET", truncated=False):
    lines = [f"HTTP/1.1 {status} {reason}"]
    keeps_length = method == "HEAD" or status in (204, 304) or status < 200
    for name, value in headers:
        lower = name.lower()
        if lower in _HOP_BY_HOP:
            continue
        if lower == "content-length" and not keeps_length:
            continue
        lines.append(f"{name}: {value}")
    if not keeps_length:
        lines.append(f"Content-Length: {content_length}")
    if truncated:
        lines.append("Connection: close")
    payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    connection.sendall(payload + body)


def _hard_close(connection: socket.socket) -> None:
    """Closes with an RST: the peer sees a reset, not an orderly end."""
    try:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        connection.close()
    except OSError:
        pass


def _soft_close(connection: socket.socket) -> None:
    """Closes in order: what was sent arrives, then the peer sees the end of the stream."""
    try:
        connection.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    try:
        connection.close()
    except OSError:
        pass
