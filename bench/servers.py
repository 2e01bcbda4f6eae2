"""The servers the benchmarks talk to, all on 127.0.0.1.

- nginx (Debian's package plus its Lua module), with its own config and prefix directory:
  * ``loopback``: the generated objects as a path-style S3 endpoint (GET/HEAD with Range,
    ListObjectsV2 from pre-generated pages), no shaping;
  * ``s3like``: the same, plus a 20 ms first-byte delay per request and 90 MB/s per connection;
  * ``s3like_counted``: ``s3like`` on a second port whose requests nginx logs (``COUNTED_LOG``),
    so a workload can count what reached the server (the node cache rows);
  * on both, every key under a prefix ``shared-*/`` is one body, ``_shared/<bucket>/<prefix>.bin``
    in the data dir (W4m's 100,000 objects without 100,000 files);
  * ``sink``: answers PutObject and the multipart upload calls correctly and drops the bytes.
- moto's ThreadedMotoServer for listing and for one end-to-end write correctness run.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

NGINX_PACKAGES = ["nginx", "libnginx-mod-http-lua"]
MODULE_DIR = Path("/usr/lib/nginx/modules")
# The access log of the s3like_counted port, in nginx's prefix dir: "<method> <status> <request URI>" per
# request, written as each request ends (unbuffered), so a workload reads it as soon as nginx has sent.
COUNTED_LOG = "s3like-counted.log"

# Lua run in the access phase of every S3 request to the read endpoints. ListObjectsV2
# (GET /bucket?list-type=2) is answered from pages written by data.py: one directory per
# (bucket, md5(prefix)), one file per page, continuation tokens are page numbers.
_READ_LUA = r"""
        access_by_lua_block {
            %(delay)s
            -- ListObjectsV2 with start-after (a parallel listing's ranges): the keys after it. pages.txt has each
            -- page's first and last key: start-after a page's last key is answered with the next page as it is
            -- (a range going on), else the page it falls in is cut there; the next continuation token is the
            -- static page after it either way.
            local function list_after(dir, after)
                local index = io.open(dir .. "pages.txt")
                if not index then return ngx.exit(404) end
                local page, pages, page_last = 0, 0, nil
                for line in index:lines() do
                    local tab = line:find("\t", 1, true)
                    if line:sub(1, tab - 1) <= after then page, page_last = pages, line:sub(tab + 1) end
                    pages = pages + 1
                end
                index:close()
                if page_last and after >= page_last and page + 1 < pages then
                    return ngx.exec("/_list/" .. dir:sub(#"%(lists)s/" + 1) .. (page + 1) .. ".xml")
                end
                while page < pages do
                    local f = io.open(dir .. page .. ".xml")
                    local xml = f:read("*a")
                    f:close()
                    local head_end = xml:find("<Contents>", 1, true)
                    if head_end then
                        local kept, count = {}, 0
                        for entry, key in xml:gmatch("(<Contents><Key>(.-)</Key>.-</Contents>)") do
                            if key > after then
                                count = count + 1
                                kept[count] = entry
                            end
                        end
                        if count > 0 then
                            local head = xml:sub(1, head_end - 1):gsub("<KeyCount>%%d+</KeyCount>", "<KeyCount>" .. count .. "</KeyCount>")
                            ngx.header["Content-Type"] = "application/xml"
                            ngx.print(head, table.concat(kept), "</ListBucketResult>")
                            return ngx.exit(200)
                        end
                    end
                    page = page + 1
                end
                ngx.header["Content-Type"] = "application/xml"
                ngx.print('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
                    "<KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>")
                return ngx.exit(200)
            end
            local args = ngx.req.get_uri_args()
            if args["list-type"] then
                local bucket = ngx.var.uri:match("^/([^/]+)/?$")
                if not bucket then return ngx.exit(400) end
                local prefix = args["prefix"] or ""
                if type(prefix) == "table" then prefix = prefix[1] end
                local token = args["continuation-token"]
                if type(token) == "table" then token = token[1] end
                local after = args["start-after"]
                if type(after) == "table" then after = after[1] end
                if not token and after and after ~= "" then
                    return list_after("%(lists)s/" .. bucket .. "/" .. ngx.md5(prefix) .. "/", after)
                end
                token = token or "0"
                if not token:match("^%%d+$") then return ngx.exit(400) end
                return ngx.exec("/_list/" .. bucket .. "/" .. ngx.md5(prefix) .. "/" .. token .. ".xml")
            end
            local m = ngx.req.get_method()
            if m ~= "GET" and m ~= "HEAD" then return ngx.exit(405) end
            -- GetObject ?partNumber=N (the CRT sends partNumber=1 when it knows the size): every
            -- object here was one PutObject, so part 1 is all of it, answered as S3 does, 206
            -- with a Content-Range; there is no other part.
            local part = args["partNumber"]
            if part then
                if part ~= "1" then return ngx.exit(416) end
                ngx.req.set_header("Range", "bytes=0-")
            end
            -- Every key under a prefix shared-*/ is one body (its ETag, Range and HEAD as nginx serves a file).
            local sb, sp = ngx.var.uri:match("^/([^/]+)/(shared%%-[^/]+)/[^/]+$")
            if sb then return ngx.exec("/_shared/" .. sb .. "/" .. sp .. ".bin") end
        }
"""

# The write sink: every call of a PutObject or a multipart upload answered as S3 would, the
# request body read into memory (client_body_buffer_size) and dropped.
_SINK_LUA = r"""
        content_by_lua_block {
            local m = ngx.req.get_method()
            local args = ngx.req.get_uri_args()
            local uri = ngx.var.uri
            local bucket, key = uri:match("^/([^/]+)/(.+)$")
            if not bucket then
                ngx.req.discard_body()
                return ngx.exit(m == "HEAD" and 200 or 404)
            end
            ngx.req.read_body()
            local function xml(body)
                ngx.header["Content-Type"] = "application/xml"
                ngx.header["x-amz-request-id"] = "sink"
                ngx.print('<?xml version="1.0" encoding="UTF-8"?>\n' .. body)
                return ngx.exit(200)
            end
            if m == "POST" and args["uploads"] ~= nil then
                local id = ngx.md5(uri .. ngx.now() .. math.random())
                return xml('<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    .. '<Bucket>' .. bucket .. '</Bucket><Key>' .. key .. '</Key><UploadId>' .. id
                    .. '</UploadId></InitiateMultipartUploadResult>')
            elseif m == "PUT" and args["partNumber"] and args["uploadId"] then
                ngx.header["ETag"] = '"' .. ngx.md5(tostring(args["uploadId"]) .. "/" .. tostring(args["partNumber"])) .. '"'
                ngx.header["x-amz-request-id"] = "sink"
                return ngx.exit(200)
            elseif m == "POST" and args["uploadId"] then
                return xml('<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    .. '<Location>http://' .. ngx.var.http_host .. uri .. '</Location><Bucket>' .. bucket
                    .. '</Bucket><Key>' .. key .. '</Key><ETag>"' .. ngx.md5(tostring(args["uploadId"]))
                    .. '-1"</ETag></CompleteMultipartUploadResult>')
            elseif m == "DELETE" then
                return ngx.exit(204)
            elseif m == "PUT" then
                ngx.header["ETag"] = '"' .. ngx.md5(uri .. ngx.now()) .. '"'
                ngx.header["x-amz-request-id"] = "sink"
                return ngx.exit(200)
            elseif m == "HEAD" or m == "GET" then
                return ngx.exit(404)
            end
            return ngx.exit(405)
        }
"""

_CONFIG = r"""
# Written by bench/servers.py; nginx runs with -p %(prefix)s -c this file.
load_module %(modules)s/ndk_http_module.so;
load_module %(modules)s/ngx_http_lua_module.so;
%(user)s
worker_processes 2;
daemon off;
master_process on;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log warn;

events {
    worker_connections 4096;
    multi_accept on;
}

http {
    access_log off;
    log_format counted '$request_method $status $request_uri';
    map $server_port $counted { %(s3like_counted_port)d 1; default 0; }
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    default_type application/octet-stream;
    types { }
    etag on;
    client_body_temp_path %(prefix)s/client_body;
    proxy_temp_path %(prefix)s/proxy;
    fastcgi_temp_path %(prefix)s/fastcgi;
    uwsgi_temp_path %(prefix)s/uwsgi;
    scgi_temp_path %(prefix)s/scgi;
    lua_package_path "/usr/share/lua/5.1/?.lua;;";

    # loopback: the machine's limit
    server {
        listen 127.0.0.1:%(loopback_port)d reuseport;
        root %(data)s;
        location /_list/ { internal; alias %(lists)s/; default_type application/xml; }
        location /_shared/ { internal; alias %(data)s/_shared/; }
        location / {
            %(read_lua_loopback)s
        }
    }

    # s3like: 20 ms to first byte, 90 MB/s per connection; its requests to the second port are logged
    server {
        listen 127.0.0.1:%(s3like_port)d reuseport;
        listen 127.0.0.1:%(s3like_counted_port)d reuseport;
        # With tcp_nopush a range that starts inside a page of the file (a tar sample's, W12r) waits about 40 ms
        # (TCP_CORK and the delayed ACK): 818 against 5,514 ranges/s from 32 threads on loopback. S3 has no such
        # stall, so the S3-like server must not have it either.
        tcp_nopush off;
        access_log %(prefix)s/%(counted_log)s counted if=$counted;
        root %(data)s;
        location /_list/ { internal; alias %(lists)s/; default_type application/xml; }
        location /_shared/ { internal; limit_rate 90m; alias %(data)s/_shared/; }
        location / {
            limit_rate 90m;
            %(read_lua_s3like)s
        }
    }

    # sink: PutObject and multipart uploads answered, bytes dropped
    server {
        listen 127.0.0.1:%(sink_port)d reuseport;
        client_max_body_size 0;
        client_body_buffer_size 64m;
        client_body_in_file_only off;
        location / {
            %(sink_lua)s
        }
    }
}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_nginx(log) -> str:
    """nginx with the Lua module, installed from Debian's packages when missing."""
    if shutil.which("nginx") and (MODULE_DIR / "ngx_http_lua_module.so").exists():
        return shutil.which("nginx")
    if os.geteuid() != 0:
        raise SystemExit(
            "nginx and its Lua module are missing; install them with "
            "`apt-get install -y nginx libnginx-mod-http-lua` (as root) and run again"
        )
    log("installing nginx and libnginx-mod-http-lua with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *NGINX_PACKAGES],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    # Debian's package starts the system nginx on port 80 where it can; we do not need it.
    subprocess.run(["service", "nginx", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return shutil.which("nginx")


def nginx_version(nginx: str) -> str:
    out = subprocess.run([nginx, "-v"], capture_output=True, text=True)
    return (out.stderr or out.stdout).strip().replace("nginx version: ", "")


class Nginx:
    def __init__(self, nginx: str, prefix: Path, data: Path, lists: Path):
        self.nginx = nginx
        self.prefix = prefix
        self.data = data
        self.lists = lists
        self.ports: Dict[str, int] = {}
        self.proc: Optional[subprocess.Popen] = None

    def endpoint(self, profile: str) -> str:
        return f"http://127.0.0.1:{self.ports[profile]}"

    @property
    def counted_log(self) -> Path:
        return self.prefix / COUNTED_LOG

    def stop_stale(self) -> None:
        """A master left running by an earlier run of this harness with this prefix (killed hard)."""
        pid_file = self.prefix / "nginx.pid"
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return
        if "nginx" in cmdline and str(self.prefix) in cmdline:
            os.kill(pid, 15)
            for _ in range(50):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)

    def start(self) -> None:
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.stop_stale()
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / d).mkdir(exist_ok=True)
        self.ports = {profile: free_port() for profile in ("loopback", "s3like", "s3like_counted", "sink")}
        self.counted_log.unlink(missing_ok=True)  # a last run's
        config = _CONFIG % dict(
            prefix=self.prefix,
            modules=MODULE_DIR,
            # As root nginx's workers would switch to nobody, who may not read the data dir.
            user="user root;" if os.geteuid() == 0 else "",
            data=self.data,
            lists=self.lists,
            loopback_port=self.ports["loopback"],
            s3like_port=self.ports["s3like"],
            s3like_counted_port=self.ports["s3like_counted"],
            counted_log=COUNTED_LOG,
            sink_port=self.ports["sink"],
            read_lua_loopback=_READ_LUA % dict(delay="", lists=self.lists),
            read_lua_s3like=_READ_LUA % dict(delay="ngx.sleep(0.02)", lists=self.lists),
            sink_lua=_SINK_LUA,
        )
        conf = self.prefix / "nginx.conf"
        conf.write_text(config)
        check = subprocess.run(
            [self.nginx, "-t", "-q", "-p", str(self.prefix), "-c", str(conf)], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected its config {conf}:\n{check.stderr}")
        self.proc = subprocess.Popen(
            [self.nginx, "-p", str(self.prefix), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.prefix / "stderr.log", "wb"),
        )
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.prefix / 'stderr.log').read_text()}")
            try:
                for port in self.ports.values():
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start listening within 15 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # the master stops its workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _curl(url: str, write_out: str, extra: List[str], timeout: float) -> List[float]:
    """curl -s -f to /dev/null; the numbers its --write-out format asks for."""
    command = ["curl", "-s", "-f", "-o", "/dev/null", "--max-time", str(int(timeout)), *extra, "-w", write_out, url]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return [float(x) for x in out.stdout.split()]


def curl_get(url: str, timeout: float = 600) -> Dict[str, float]:
    """One GET with curl into /dev/null: seconds to first byte, bytes/s, bytes."""
    write_out = "%{time_starttransfer} %{time_total} %{speed_download} %{size_download}"
    ttfb, total, speed, size = _curl(url, write_out, [], timeout)
    return {"ttfb_s": ttfb, "total_s": total, "bytes_per_s": speed, "bytes": size}


def curl_put(url: str, path: str, timeout: float = 600) -> Dict[str, float]:
    """One PUT of the file with curl -T (one connection, no checksum): seconds and bytes sent."""
    total, speed, size = _curl(url, "%{time_total} %{speed_upload} %{size_upload}", ["-T", path], timeout)
    return {"total_s": total, "bytes_per_s": speed, "bytes": size}


def check_read_server(endpoint: str, bucket: str, key: str, size: int, list_prefix: str) -> None:
    """GET with Range, GetObject by partNumber, HEAD and ListObjectsV2 answer as S3 does."""

    def call(method, path, headers=None):
        req = urllib.request.Request(endpoint + path, method=method, headers=headers or {})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()

    status, h, body = call("GET", f"/{bucket}/{key}", {"Range": "bytes=10-19"})
    assert status == 206 and h["Content-Range"] == f"bytes 10-19/{size}" and len(body) == 10, (status, dict(h))
    status, h, _ = call("HEAD", f"/{bucket}/{key}")
    assert status == 200 and int(h["Content-Length"]) == size and h["ETag"], (status, dict(h))
    status, h, body = call("GET", f"/{bucket}/{list_prefix}000000.bin?partNumber=1")
    assert status == 206 and h["Content-Range"].startswith("bytes 0-"), (status, dict(h))
    status, h, body = call("GET", f"/{bucket}?list-type=2&prefix={list_prefix}")
    assert status == 200 and b"<ListBucketResult" in body and b"<Key>" in body, (status, body[:300])


def check_shared(endpoint: str, bucket: str, prefix: str, count: int, size: int, etag: str) -> None:
    """W4m's objects: the listing's last page and a GET pinned to the manifest's ETag (If-Match)."""

    def call(path, headers=None):
        req = urllib.request.Request(endpoint + path, headers=headers or {})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()

    last = f"{prefix}{count - 1:07d}.bin"
    status, h, body = call(f"/{bucket}/{last}", {"If-Match": etag})
    assert status == 200 and h["ETag"] == etag and len(body) == size, (status, dict(h))
    token = (count - 1) // 1000
    status, _, body = call(f"/{bucket}?list-type=2&prefix={prefix}&max-keys=1000&continuation-token={token}")
    assert status == 200 and f"<Key>{last}</Key>".encode() in body and b"<IsTruncated>false" in body, body[-300:]
    try:
        call(f"/{bucket}/{last}", {"If-Match": '"another"'})
        raise AssertionError("nginx ignored If-Match")
    except urllib.error.HTTPError as e:
        assert e.code == 412, e.code


def check_counted(counted: str, uncounted: str, log: Path, bucket: str, key: str) -> None:
    """A GET on the counted port is logged, one line (once nginx has sent it); one on s3like's own is not."""
    before = log.stat().st_size if log.exists() else 0
    for endpoint in (uncounted, counted):
        with urllib.request.urlopen(f"{endpoint}/{bucket}/{key}", timeout=10) as r:
            r.read()
    deadline = time.time() + 5
    while time.time() < deadline and (log.stat().st_size if log.exists() else 0) == before:
        time.sleep(0.05)
    with open(log, "rb") as f:
        f.seek(before)
        lines = f.read().decode().splitlines()
    assert lines == [f"GET 200 /{bucket}/{key}"], lines


def check_sink(endpoint: str) -> None:
    """The sink answers a multipart upload as S3 does (one call each, with urllib)."""

    def call(method, path, data=None):
        req = urllib.request.Request(endpoint + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()

    status, _, body = call("POST", "/sink/check.bin?uploads", b"")
    assert status == 200 and b"<UploadId>" in body, body
    upload_id = body.split(b"<UploadId>")[1].split(b"</UploadId>")[0].decode()
    status, headers, _ = call("PUT", f"/sink/check.bin?partNumber=1&uploadId={upload_id}", b"x" * 1024 * 1024)
    assert status == 200 and headers.get("ETag"), headers
    status, _, body = call("POST", f"/sink/check.bin?uploadId={upload_id}", b"<CompleteMultipartUpload/>")
    assert status == 200 and b"CompleteMultipartUploadResult" in body, body
    status, headers, _ = call("PUT", "/sink/small.bin", b"y" * 1000)
    assert status == 200 and headers.get("ETag"), headers


class Moto:
    """moto's server in this process (its backends are filled directly, which is much faster
    than one PutObject per key)."""

    def __init__(self):
        self.server = None
        self.port = free_port()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def boto3(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(max_pool_connections=32),
        )

    def fill(self, bucket: str, prefix: str, count: int) -> None:
        """``count`` empty objects ``prefix%07d``."""
        s3 = self.boto3()
        s3.create_bucket(Bucket=bucket)
        try:
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.s3.models import s3_backends

            backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
            for i in range(count):
                backend.put_object(bucket, f"{prefix}{i:07d}", b"")
        except Exception as e:  # moto's internals moved: fall back to the API
            print(f"moto backend fill failed ({e!r}); using PutObject", file=sys.stderr)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"{prefix}{i:07d}", Body=b""), range(count)))
        n = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)["KeyCount"]
        if n < 1:
            raise RuntimeError("moto listing is empty after filling it")
