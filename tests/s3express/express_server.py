"""A test-only S3 Express One Zone endpoint on 127.0.0.1, in front of moto (which has no S3 Express).

What it enforces, as S3 Express does for directory buckets (names like ``data--use1-az4--x-s3``):

- virtual-hosted addressing only: ``Host: <bucket>.localhost[:port]``; a Host naming no bucket is
  answered 400 ``InvalidRequest``;
- ``GET /?session`` (CreateSession) must be SigV4-signed with the user's long-term credentials for the
  service ``s3express`` and this server's region; the bucket must exist upstream (else 404
  ``NoSuchBucket``); the answer is a fresh session (AccessKeyId, SecretAccessKey, SessionToken,
  Expiration = now + ``session_seconds``);
- every other request must carry ``x-amz-s3session-token`` naming an unexpired session of the same
  bucket, among its signed headers, and be SigV4-signed with that session's keys for ``s3express``,
  except CopyObject and UploadPartCopy (a PUT with ``x-amz-copy-source``), signed for ``s3express``
  with the user's own credentials and no session, as AWS's API reference says; otherwise it is refused (403 ``AccessDenied`` saying why, or 400 ``ExpiredToken``) and listed in
  ``refused()``.

Signatures are verified for real (canonical request, string to sign, derived key); the payload hash is
``x-amz-content-sha256`` as sent (``UNSIGNED-PAYLOAD``, ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` or a hex
sha256, the last checked against the body); aws-chunked chunk signatures are not checked.

Accepted requests go to moto path-style (``/<bucket><path>?<query>``) with the Host replaced and
``x-amz-s3session-token`` dropped, the body byte for byte. Moto's answer comes back as is, except that
a ListObjectsV2 page has its ``<Contents>`` reordered by the sha256 of each key: S3 Express lists
directory buckets in no lexicographic order, and clients must not rely on one. The order is
deterministic (same keys, same order).

The request and response plumbing (head and body reading, aws-chunked bodies, response writing,
closing) is tests/faults/proxy.py's.
"""

import base64
import hashlib
import hmac
import http.client
import re
import secrets
import socket
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Optional, Tuple
from xml.sax.saxutils import escape

from faults.proxy import _aws_chunked_trailers, _hard_close, _read_body, _read_head, _send_response, _soft_close
from loopback_server import LoopbackServer

_SOCKET_TIMEOUT = 60.0
_SESSION_HEADER = "x-amz-s3session-token"
_SERVICE = "s3express"
_ALGORITHM = "AWS4-HMAC-SHA256"
_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
_UNRESERVED = "-_.~"  # with A-Z a-z 0-9, the characters SigV4 leaves unencoded


# ---------------------------------------------------------------------- SigV4, written out


def uri_encode(text: str) -> str:
    """SigV4's UriEncode of a query name or value: unreserved characters kept, every other byte of
    its UTF-8 as %XX with upper-case hex (so "/" and " " are encoded, never "+")."""
    return urllib.parse.quote(text, safe=_UNRESERVED)


def canonical_query(raw_query: str) -> str:
    """The canonical query string of a query as sent. Each name and value is percent-decoded, then
    encoded again per SigV4, so a client's harmless encoding choices (``~`` or ``%7E``) do not
    matter; pairs are sorted by encoded name, then encoded value. A name with no ``=`` (``?session``)
    counts as an empty value (``session=``). A "+" is taken literally, not as a space: SigV4
    clients encode spaces as %20."""
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((uri_encode(urllib.parse.unquote(name)), uri_encode(urllib.parse.unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_header_value(value: str) -> str:
    """Trimmed, inner runs of spaces collapsed to one."""
    return re.sub(" +", " ", value.strip())


def canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Dict[str, str],
    signed_headers: List[str],
    payload_hash: str,
) -> str:
    """SigV4's canonical request as S3 builds it: the path exactly as sent (S3 neither normalises nor
    encodes it again). ``headers`` has lower-case names (repeated headers already joined by ",")."""
    lines = [method.upper(), raw_path or "/", canonical_query(raw_query)]
    lines += [f"{name}:{canonical_header_value(headers.get(name, ''))}" for name in signed_headers]
    lines += ["", ";".join(signed_headers), payload_hash]
    return "\n".join(lines)


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    return "\n".join([_ALGORITHM, amz_date, scope, hashlib.sha256(request.encode("utf-8")).hexdigest()])


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def signature(secret_key: str, date: str, region: str, service: str, to_sign: str) -> str:
    return hmac.new(signing_key(secret_key, date, region, service), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass
class Authorization:
    """A parsed ``Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
    SignedHeaders=a;b, Signature=hex`` header."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: List[str]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def parse_authorization(value: str) -> Authorization:
    """Raises ValueError, saying what is wrong, for anything but a SigV4 header."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != _ALGORITHM:
        raise ValueError(f"the algorithm is {algorithm!r}, not {_ALGORITHM}")
    parts = {}
    for piece in rest.split(","):
        name, equals, content = piece.strip().partition("=")
        if equals:
            parts[name] = content
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in parts]
    if missing:
        raise ValueError(f"the Authorization header lacks {', '.join(missing)}")
    credential = parts["Credential"].split("/")
    if len(credential) != 5 or credential[4] != "aws4_request":
        raise ValueError(f"malformed Credential {parts['Credential']!r}")
    signed = parts["SignedHeaders"].split(";")
    if signed != sorted(signed) or any(name != name.lower() or not name for name in signed):
        raise ValueError("SignedHeaders must be lower-case names, sorted")
    return Authorization(credential[0], credential[1], credential[2], credential[3], signed, parts["Signature"])


# ---------------------------------------------------------------------- the server's records


@dataclass
class Session:
    """One CreateSession's answer, and the bucket it is for."""

    bucket: str
    access_key_id: str
    secret_access_key: str
    token: str
    expires_at: float  # time.time() at which it expires

    def expired(self, now: Optional[float] = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at


@dataclass
class Refusal:
    method: str
    target: str
    bucket: Optional[str]
    status: int
    code: str
    reason: str


@dataclass
class Exchange:
    """One request and how it was answered: "create-session", "forward" or "refused"."""

    method: str
    target: str
    bucket: Optional[str]
    headers: Dict[str, str]
    action: str
    status: int
    trailers: Dict[str, str] = field(default_factory=dict)  # of an aws-chunked body


class _Refuse(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _access_denied(message: str) -> _Refuse:
    return _Refuse(403, "AccessDenied", message)


def _malformed(message: str) -> _Refuse:
    return _Refuse(400, "AuthorizationHeaderMalformed", message)


# ---------------------------------------------------------------------- the server


class ExpressServer(LoopbackServer):
    """``ExpressServer(upstream, access_key=..., secret_key=..., region="us-east-1", session_seconds=300,
    unstable_listing=False)``;
    ``endpoint`` is the URL clients use (``http://localhost:<port>``). Use as a context manager, or
    call ``stop()``."""

    def __init__(
        self,
        upstream: str,
        *,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        session_seconds: float = 300,
        unstable_listing: bool = False,
    ):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.session_seconds = session_seconds
        # S3 promises no order for a directory bucket's listing, not even the same one twice: with this set,
        # every listing of a page comes in another order.
        self.unstable_listing = unstable_listing
        self._sessions: Dict[str, Session] = {}  # by token, in the order issued
        self._refusals: List[Refusal] = []
        self._exchanges: List[Exchange] = []
        super().__init__("s3express")
        self.endpoint = f"http://localhost:{self.port}"

    # ------------------------------------------------------------------ what tests look at

    def sessions(self, bucket: Optional[str] = None) -> List[Session]:
        """Sessions issued so far (of ``bucket`` if given), oldest first."""
        with self._lock:
            return [s for s in self._sessions.values() if bucket is None or s.bucket == bucket]

    def sessions_created(self, bucket: str) -> int:
        return len(self.sessions(bucket))

    def expire_sessions(self, bucket: Optional[str] = None) -> int:
        """Makes the sessions of ``bucket`` (all if None) expired now; returns how many."""
        with self._lock:
            chosen = [s for s in self._sessions.values() if bucket is None or s.bucket == bucket]
            for session in chosen:
                session.expires_at = min(session.expires_at, time.time())
        return len(chosen)

    def refused(self) -> List[Refusal]:
        with self._lock:
            return list(self._refusals)

    def exchanges(self) -> List[Exchange]:
        """Every request answered so far, in order."""
        with self._lock:
            return list(self._exchanges)

    # ------------------------------------------------------------------ one client connection

    def _on_stop(self, connection: socket.socket) -> None:
        _hard_close(connection)

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(_SOCKET_TIMEOUT)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(connection)
        reader = connection.makefile("rb")
        graceful = True
        try:
            while not self._stopping.is_set():
                head = _read_head(reader)
                if head is None:
                    return
                request_line, header_list = head
                method, target, _version = request_line.split(" ", 2)
                headers: Dict[str, str] = {}
                for name, value in header_list:  # repeated headers joined, as SigV4 wants them
                    lower = name.lower()
                    headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
                if headers.get("expect", "").lower() == "100-continue":
                    connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    header_list = [(n, v) for n, v in header_list if n.lower() != "expect"]
                body = _read_body(reader, headers)
                status, reason, response_headers, response_body = self._answer(
                    method, target, header_list, headers, body
                )
                if method == "HEAD":  # a HEAD answer has no body, an error's neither
                    if not any(name.lower() == "content-length" for name, _ in response_headers):
                        response_headers = response_headers + [("Content-Length", "0")]
                    response_body = b""
                _send_response(
                    connection, status, reason, response_headers, response_body, len(response_body), method=method
                )
                if headers.get("connection", "").lower() == "close":
                    return
        except (OSError, ValueError, http.client.HTTPException):
            graceful = False
        finally:
            try:
                reader.close()
            except OSError:
                pass
            (_soft_close if graceful else _hard_close)(connection)
            self._untrack(connection)

    def _answer(self, method, target, header_list, headers, body):
        """(status, reason, headers, body) for one request."""
        raw_path, _, raw_query = target.partition("?")
        bucket = self._bucket_of(headers.get("host", ""))
        query = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
        trailers = _aws_chunked_trailers(body) if "aws-chunked" in headers.get("content-encoding", "") else {}
        try:
            if bucket is None:
                bucket, _, rest = raw_path.lstrip("/").partition("/")
                if is_directory_bucket(bucket):
                    raise _Refuse(
                        400,
                        "InvalidRequest",
                        "S3 Express One Zone requires virtual-hosted-style requests: Host must be <bucket>.localhost",
                    )
                raw_path = "/" + rest
            if not is_directory_bucket(bucket):
                # A general purpose bucket, path-style or virtual-hosted: plain SigV4 for "s3", no session.
                auth = self._verify(method, target.partition("?")[0], raw_query, headers, self.secret_key, service="s3")
                if auth.access_key != self.access_key or _SESSION_HEADER in headers:
                    raise _access_denied("a general purpose bucket's request is signed with the user's credentials")
                answer = self._forward(bucket, method, raw_path, raw_query, header_list, body, query, shuffle=False)
                action = "forward"
            elif method == "GET" and raw_path in ("", "/") and "session" in query:
                answer = self._create_session(bucket, method, raw_path, raw_query, headers)
                action = "create-session"
            else:
                self._check_session(bucket, method, raw_path, raw_query, headers, body)
                if method == "GET" and raw_path in ("", "/") and query.get("list-type") == "2":
                    _check_directory_listing(query, headers)
                answer = self._forward(bucket, method, raw_path, raw_query, header_list, body, query)
                action = "forward"
        except _Refuse as refusal:
            with self._lock:
                self._refusals.append(Refusal(method, target, bucket, refusal.status, refusal.code, refusal.message))
            answer = _error(refusal.status, refusal.code, refusal.message, raw_path)
            action = "refused"
        with self._lock:
            self._exchanges.append(Exchange(method, target, bucket, dict(headers), action, answer[0], trailers))
        return answer

    @staticmethod
    def _bucket_of(host: str) -> Optional[str]:
        """The bucket of ``<bucket>.localhost[:port]``; None if the Host names none."""
        name = host.strip().lower()
        if name.startswith("["):  # an IPv6 literal names no bucket
            return None
        name = name.rsplit(":", 1)[0] if ":" in name else name
        suffix = ".localhost"
        if not name.endswith(suffix) or len(name) == len(suffix):
            return None
        return name[: -len(suffix)]

    # ------------------------------------------------------------------ authentication

    def _verify(
        self, method, raw_path, raw_query, headers, secret_key: str, must_sign=("host",), service=_SERVICE
    ) -> Authorization:
        """Checks the request's SigV4 signature against ``secret_key``, for ``service`` in this region,
        the headers ``must_sign`` among those signed; returns the parsed Authorization. Raises _Refuse."""
        value = headers.get("authorization")
        if not value:
            raise _access_denied("the request is not signed: no Authorization header (presigned URLs are not served)")
        try:
            auth = parse_authorization(value)
        except ValueError as problem:
            raise _malformed(str(problem)) from None
        if auth.service != service:
            raise _access_denied(f"signed for the service {auth.service!r}; this request wants {service!r}")
        if auth.region != self.region:
            raise _malformed(f"the region {auth.region!r} is wrong; expecting {self.region!r}")
        amz_date = headers.get("x-amz-date", "")
        if not amz_date:
            raise _access_denied("no x-amz-date header")
        if amz_date[:8] != auth.date:
            raise _malformed(f"the Credential date {auth.date} is not that of x-amz-date {amz_date}")
        for name in must_sign:
            if name not in auth.signed_headers:
                raise _access_denied(f"the {name} header is not among the signed headers")
        payload_hash = headers.get("x-amz-content-sha256")
        if payload_hash is None:
            raise _Refuse(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
        missing = [name for name in auth.signed_headers if name not in headers]
        if missing:
            raise _access_denied(f"signed headers missing from the request: {', '.join(missing)}")
        request = canonical_request(method, raw_path, raw_query, headers, auth.signed_headers, payload_hash)
        expected = signature(
            secret_key, auth.date, auth.region, auth.service, string_to_sign(amz_date, auth.scope, request)
        )
        if not hmac.compare_digest(expected, auth.signature):
            raise _access_denied("the signature does not match (SignatureDoesNotMatch)")
        return auth

    def _create_session(self, bucket, method, raw_path, raw_query, headers):
        auth = self._verify(method, raw_path, raw_query, headers, self.secret_key)
        if auth.access_key != self.access_key:
            raise _access_denied(f"CreateSession signed with the unknown access key {auth.access_key!r}")
        status, _, _, _ = self._upstream("HEAD", "/" + urllib.parse.quote(bucket), [], b"")
        if status == 404:
            raise _Refuse(404, "NoSuchBucket", "The specified bucket does not exist")
        if status != 200:
            raise _Refuse(500, "InternalError", f"the upstream server answered HEAD bucket with {status}")
        expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=self.session_seconds)
        session = Session(
            bucket=bucket,
            access_key_id="ASIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
            secret_access_key=base64.b64encode(secrets.token_bytes(30)).decode(),
            token=base64.b64encode(secrets.token_bytes(96)).decode(),
            expires_at=expires.timestamp(),
        )
        with self._lock:
            self._sessions[session.token] = session
        payload = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<CreateSessionResult xmlns="{_XMLNS}"><Credentials>'
            f"<SessionToken>{session.token}</SessionToken>"
            f"<SecretAccessKey>{session.secret_access_key}</SecretAccessKey>"
            f"<AccessKeyId>{session.access_key_id}</AccessKeyId>"
            f"<Expiration>{expires.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>"
            "</Credentials></CreateSessionResult>"
        ).encode()
        return 200, "OK", [("Content-Type", "application/xml"), ("x-amz-request-id", _request_id())], payload

    def _check_session(self, bucket, method, raw_path, raw_query, headers, body) -> None:
        """A data-plane request: an unexpired session of this bucket, and its signature. Raises _Refuse."""
        if method == "PUT" and "x-amz-copy-source" in headers:
            # CopyObject and UploadPartCopy are signed with the user's own credentials, for s3express, and no
            # session (AWS's API reference for both, "Directory buckets").
            auth = self._verify(method, raw_path, raw_query, headers, self.secret_key)
            if auth.access_key != self.access_key or _SESSION_HEADER in headers:
                raise _access_denied("a copy must be signed with the user's credentials, not a session's")
            return
        token = headers.get(_SESSION_HEADER)
        if "authorization" in headers:  # the wrong service is said first: it explains a missing token
            try:
                service = parse_authorization(headers["authorization"]).service
            except ValueError:
                service = _SERVICE  # _verify says what is malformed
            if service != _SERVICE:
                raise _access_denied(f"signed for the service {service!r}; S3 Express wants {_SERVICE!r}")
        if not token:
            raise _access_denied(f"no {_SESSION_HEADER} header: S3 Express requests need a CreateSession token")
        with self._lock:
            session = self._sessions.get(token)
        if session is None:
            raise _access_denied(f"the {_SESSION_HEADER} names no session this server issued")
        if session.bucket != bucket:
            raise _access_denied(f"the session token was issued for the bucket {session.bucket!r}, not {bucket!r}")
        if session.expired():
            raise _Refuse(400, "ExpiredToken", "The provided token has expired.")
        auth = self._verify(
            method, raw_path, raw_query, headers, session.secret_access_key, must_sign=("host", _SESSION_HEADER)
        )
        if auth.access_key != session.access_key_id:
            raise _access_denied(f"signed with the access key {auth.access_key!r}, not the session's")
        payload_hash = headers["x-amz-content-sha256"]
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()  # body kept in its framing
        hex_hash = re.fullmatch("[0-9a-f]{64}", payload_hash) is not None
        if hex_hash and not chunked and hashlib.sha256(body).hexdigest() != payload_hash:
            raise _Refuse(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match")

    # ------------------------------------------------------------------ upstream

    def _forward(self, bucket, method, raw_path, raw_query, header_list, body, query, shuffle=True):
        path = "/" + urllib.parse.quote(bucket) + (raw_path if raw_path not in ("", "/") else "")
        target = path + ("?" + raw_query if raw_query else "")
        forwarded = [(name, value) for name, value in header_list if name.lower() not in ("host", _SESSION_HEADER)]
        status, reason, response_headers, payload = self._upstream(method, target, forwarded, body)
        if shuffle and method == "GET" and raw_path in ("", "/") and query.get("list-type") == "2" and status == 200:
            payload = shuffle_contents(payload, secrets.token_bytes(8) if self.unstable_listing else b"")
        return status, reason, response_headers, payload

    def _upstream(self, method, target, header_list, body):
        upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=_SOCKET_TIMEOUT)
        try:
            upstream.putrequest(method, target, skip_accept_encoding=True)  # Host: moto's own
            for name, value in header_list:
                if name.lower() == "x-amz-checksum-mode":
                    value = value.upper()  # moto answers only "ENABLED"; the CRT sends "enabled"
                upstream.putheader(name, value)
            upstream.endheaders(body if body else None)
            response = upstream.getresponse()
            return response.status, response.reason, response.getheaders(), response.read()
        finally:
            upstream.close()


# ---------------------------------------------------------------------- responses

_CONTENTS = re.compile(rb"<Contents>.*?</Contents>", re.DOTALL)
_KEY = re.compile(rb"<Key>(.*?)</Key>", re.DOTALL)


def is_directory_bucket(bucket: str) -> bool:
    """S3 names directory buckets ``<base name>--<zone id>--x-s3``."""
    return re.fullmatch(r".+--[a-z0-9-]+--x-s3", bucket) is not None


def _check_directory_listing(query: Dict[str, str], headers: Dict[str, str]) -> None:
    """What AWS's API reference says ListObjectsV2 does not support on a directory bucket. Raises _Refuse."""
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    if prefix and not prefix.endswith("/"):
        raise _Refuse(400, "InvalidRequest", "directory buckets support only prefixes that end in a delimiter (/)")
    if delimiter and delimiter != "/":
        raise _Refuse(400, "InvalidRequest", "/ is the only delimiter directory buckets support")
    if "x-amz-request-payer" in headers:
        raise _Refuse(400, "InvalidRequest", "RequestPayer is not supported for directory buckets")


def listing_order(key: bytes) -> bytes:
    """The sort key of a listed object: the sha256 of its <Key> text as it appears in the XML."""
    return hashlib.sha256(key).digest()


def shuffle_contents(payload: bytes, salt: bytes = b"") -> bytes:
    """A ListObjectsV2 page with its <Contents> elements reordered by listing_order (of the salted key:
    another salt, another order), each moved whole into the places the page had them; everything else
    is kept."""
    blocks = _CONTENTS.findall(payload)

    def order(block: bytes) -> bytes:
        found = _KEY.search(block)
        return listing_order(salt + (found.group(1) if found else b""))

    reordered = iter(sorted(blocks, key=order))
    return _CONTENTS.sub(lambda _match: next(reordered), payload)


def _request_id() -> str:
    return secrets.token_hex(8).upper()


def _error(status: int, code: str, message: str, resource: str) -> Tuple[int, str, list, bytes]:
    request_id = _request_id()
    payload = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message><Resource>{escape(resource)}</Resource>"
        f"<RequestId>{request_id}</RequestId><HostId>s3express-test</HostId></Error>"
    ).encode()
    reason = http.client.responses.get(status, "Error")
    return status, reason, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], payload
