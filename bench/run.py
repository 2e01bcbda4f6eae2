"""python -m bench [--quick]: set up the servers and peers, run every workload, write results.

Writes bench/results/latest.json, latest.md (the table) and latest.png (the chart).
"""

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import data as datagen
from . import peers, plan, report, servers
from .workloads import listed_keys

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKLOADS = HERE / "workloads.py"
DATA = HERE / "data"  # generated objects (nginx's root) and listing pages; not in git
LISTS = HERE / "data" / "_lists"
LISTED_ETAG = '"d41d8cd98f00b204e9800998ecf8427e"'  # W11's keys: the ETag of an empty object
PREFIX = HERE / ".nginx"  # nginx's prefix dir: config, logs, pid, temp
VENV = HERE / ".venv-original"
BASELINE_VENV = HERE / ".venv-baseline"
# The interpreter of each client that does not run in this one (set up by set_up()).
PYTHONS = {}
RESULTS = HERE / "results"


def _log(msg: str) -> None:
    try:
        from tqdm import tqdm

        tqdm.write(f"[bench] {msg}", file=sys.stderr)
    except ImportError:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run_workload(python: str, spec: dict, timeout: int) -> dict:
    """One workload in a fresh process (so its memory numbers are its own)."""
    cmd = [python, "-I", str(WORKLOADS), json.dumps(spec)]
    started = time.time()
    load = os.getloadavg()[0]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=peers.clean_env(),
        cwd=str(HERE),
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)  # the process group it leads: DataLoader workers too
        out, err = proc.communicate()
    result = None
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    ok = result is not None and (proc.returncode == 0 or timed_out)
    error = None
    if result is None:
        error = f"timed out after {timeout} s" if timed_out else (err.strip()[-3000:] or f"exit {proc.returncode}")
    elif proc.returncode != 0:
        error = f"exited {proc.returncode} after printing its result" + (" (timed out at exit)" if timed_out else "")
        ok = True  # the measurement is there; the exit problem is reported beside it
    return dict(
        ok=ok,
        error=error,
        result=result,
        wall_s=time.time() - started,
        load_1m=load,
        exit_code=proc.returncode,
        stderr_tail=err.strip()[-1500:] if err else "",
    )


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "boto3", "s3fs", "moto"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def _native_stamp() -> str:
    """When our native module was last built: the lead rebuilds it in place."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("s3torchconnector._native")
        if spec and spec.origin:
            return time.strftime("%H:%M:%S", time.gmtime(os.path.getmtime(spec.origin)))
    except (ImportError, OSError):
        pass
    return "?"


def _fingerprint() -> str:
    return f"{_git()}, native module built {_native_stamp()} UTC"


def _git() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "python", "cpp"], capture_output=True, text=True
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except OSError:
        return "?"


def prepare_data(sizes: plan.Sizes, workloads, log) -> dict:
    """The objects nginx serves; returns key -> path."""
    bucket_dir = DATA / datagen.BUCKET
    paths = {}
    for key, size in plan.data_needed(sizes).items():
        if datagen.write_random_file(bucket_dir / key, size):
            log(f"generated s3://{datagen.BUCKET}/{key} ({plan.human(size)})")
        paths[key] = str(bucket_dir / key)
    names = plan.keys(sizes)
    prefix = names["small_prefix"]
    keys = datagen.write_small_objects(DATA, prefix, sizes.small_count, sizes.small_size)
    shutil.rmtree(LISTS, ignore_errors=True)
    small = datagen.served_entries(DATA, keys)
    datagen.write_listing(LISTS, datagen.BUCKET, prefix, small)
    concurrent = names["concurrent_prefix"]  # W9n: the first 1,000 of them
    datagen.write_listing(LISTS, datagen.BUCKET, concurrent, [e for e in small if e[0].startswith(concurrent)])
    ckpt_key = names["checkpoint"]
    if datagen.write_checkpoint(bucket_dir / ckpt_key, sizes.checkpoint):
        log(f"generated s3://{datagen.BUCKET}/{ckpt_key} (torch.save, {plan.human(sizes.checkpoint)})")
    paths[ckpt_key] = str(bucket_dir / ckpt_key)
    # W4m: many keys with one body, their listing and manifest (cheap: made every run)
    paths["_shared_etag"] = datagen.write_shared_objects(
        DATA, LISTS, datagen.BUCKET, names["shared_prefix"], sizes.manifest_keys, plan.SHARED_BODY, names["manifest"]
    )
    # W10*: a manifest of many entries (written once, kept: about 850 MB for 10 million)
    if any(w.kind == "index" for w in workloads):
        t = time.time()
        if datagen.write_index_manifest(
            DATA, datagen.BUCKET, names["index_prefix"], sizes.index_entries, plan.SHARED_BODY, names["index_manifest"]
        ):
            log(f"generated s3://{datagen.BUCKET}/{names['index_manifest']} ({time.time() - t:.0f} s)")
    # W8 and W9t: tar shards whose samples are W2's objects
    if any(w.kind in ("tar", "tar_random") or w.params.get("shard_format") == "tar" for w in workloads):
        t = time.time()
        shards = datagen.write_tar_shards(
            DATA, plan.shard_keys(sizes), plan.samples_per_shard(sizes), [DATA / datagen.BUCKET / k for k in keys]
        )
        # W12r: each shard's index beside it (an ETag is the file's mtime and size: made again with the shard)
        indexes = datagen.write_tar_indexes(
            DATA, plan.shard_keys(sizes), plan.samples_per_shard(sizes), sizes.small_size
        )
        shards_listed = sorted(plan.shard_keys(sizes) + indexes)
        datagen.write_listing(
            LISTS, datagen.BUCKET, names["shards_prefix"], datagen.served_entries(DATA, shards_listed)
        )
        if time.time() - t > 1:
            log(
                f"tar shards: {len(shards)} under s3://{datagen.BUCKET}/{names['shards_prefix']} ({time.time() - t:.0f} s)"
            )
    # W11 and W11n: listing pages only (no objects), for keys that share one ETag
    for w in workloads:
        if w.kind == "list_all":
            keys_listed = listed_keys(w.params["prefix"], w.params["count"], w.params["folders"])
            datagen.write_listing(
                LISTS, datagen.BUCKET, w.params["prefix"], [(key, 0, LISTED_ETAG) for key in keys_listed]
            )
    # The other mode's objects go: the data dir holds one mode's objects (full: about 5 GiB).
    needed = set(plan.data_needed(sizes)) | {
        ckpt_key,
        prefix.rstrip("/"),
        names["shards_prefix"].rstrip("/"),
        names["manifest"].split("/")[0],
    }
    for entry in bucket_dir.iterdir():
        if entry.name not in needed:
            log(f"removing {entry} (not used by this mode)")
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return paths


def check_profiles(nginx: servers.Nginx, key: str, log) -> dict:
    out = {}
    for profile in ("loopback", "s3like"):
        out[profile] = servers.curl_get(f"{nginx.endpoint(profile)}/{datagen.BUCKET}/{key}")
    s = out["s3like"]
    ok = 0.015 <= s["ttfb_s"] <= 0.045 and 80e6 <= s["bytes_per_s"] <= 100e6
    out["s3like_ok"] = ok
    log(
        f"curl: loopback {out['loopback']['bytes_per_s'] / 1e6:,.0f} MB/s, ttfb {out['loopback']['ttfb_s'] * 1e3:.1f} ms; "
        f"s3like {s['bytes_per_s'] / 1e6:,.1f} MB/s, ttfb {s['ttfb_s'] * 1e3:.1f} ms"
        + ("" if ok else "  <-- s3like is off its 21 ms / ~91 MB/s")
    )
    return out


def main(argv=None) -> int:
    args = _parse_args(argv)
    # Stopped by a signal, still stop nginx and moto (the finally block of run_everything).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a shell
        signal.signal(signal.SIGINT, _interrupt)
    if args.serve:
        return serve(plan.QUICK if args.quick else plan.FULL)

    started = Started()
    sizes, workloads, notes = choose_workloads(args)
    peers.ensure_main_packages(_log)
    from tqdm import tqdm

    runs_planned = sum(w.reps * len(w.impls) for w in workloads if not w.from_runs_of)
    bar = tqdm(total=runs_planned + 5, unit="step", desc="set-up", dynamic_ncols=True)
    nginx_bin, original, paths = set_up(sizes, workloads, bar, args.baseline)
    if args.baseline:
        notes.append(
            f"baseline: our package at {args.baseline} ({PYTHONS['baseline_commit'][:10]}), built into {BASELINE_VENV}"
        )
    runs, profiles, signed = run_everything(sizes, workloads, nginx_bin, original, paths, notes, bar)
    bar.set_description("report")
    meta = describe_run(args, started, sizes, nginx_bin, original, profiles, signed, runs, notes)
    md = write_results(Path(args.out), workloads, runs, meta)
    bar.update(1)
    bar.close()
    print(md)
    print(
        f"wrote {Path(args.out) / 'latest.json'}, latest.md, latest.png in {meta['duration_s']:.0f} s; "
        f"generated data in {DATA}: {datagen.disk_usage(DATA) / 2**30:.1f} GiB"
        + (" (deleting: --clean)" if args.clean else " (kept for the next run; --clean deletes it)")
    )
    if args.clean:
        shutil.rmtree(DATA, ignore_errors=True)
        shutil.rmtree(PREFIX, ignore_errors=True)
    return 0


def _parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller objects and counts: a run of a few minutes")
    ap.add_argument(
        "--only",
        help="comma-separated workload ids (W0,W0s,W1,W1c,W1q,W1s,W2,W2x,W2d,W2m,W3s,W3l,W3ls,W3lb,W3c,W4,W4m,W4mx,"
        "W5,W5n,W5s,W6,W6b,W8,W9,W9t,W9c,W9n,W11,W11n); W4m brings W4mx, W1c and W6b bring W1, W3lb brings W3l",
    )
    ap.add_argument(
        "--impls",
        help="comma-separated clients (ours,original,boto3,s3fs,curl,ours_prefix,webdataset,ours_nocache,local_files,"
        "webdataset_local,ours_paged)",
    )
    ap.add_argument("--reps", type=int, help="repetitions of the fast workloads (default 3, --quick 1)")
    ap.add_argument(
        "--baseline",
        metavar="REF",
        help="also run our package as built from the git ref REF (impl 'baseline', next to 'ours' in every "
        "workload ours runs): an A/B of two builds in one run, interleaved as the clients are",
    )
    ap.add_argument("--out", default=str(RESULTS), help="directory of latest.{json,md,png}")
    ap.add_argument("--clean", action="store_true", help="delete the generated data and nginx dir at the end")
    ap.add_argument(
        "--serve",
        action="store_true",
        help="only set up the data and start nginx, print its endpoints and wait (for profiling by hand)",
    )
    return ap.parse_args(argv)


class Started:
    """When the run began, the machine's load then, and which build of ours it measures."""

    def __init__(self):
        self.time = time.time()
        self.stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.load = os.getloadavg()
        self.ours = _fingerprint()


def choose_workloads(args):
    """The sizes, the workloads and clients the arguments ask for, and notes for the report."""
    sizes = plan.QUICK if args.quick else plan.FULL
    if args.reps:
        sizes = dataclasses.replace(sizes, reps=args.reps)
    workloads = plan.build(sizes, args.quick)
    if args.only:
        wanted = set(args.only.split(","))
        if wanted & {"W1c", "W6b"}:  # rows made from W1's runs
            wanted.add("W1")
        if "W3lb" in wanted:
            wanted.add("W3l")
        wanted = plan.first_sample_ids(wanted)
        workloads = [w for w in workloads if w.id in wanted]
    if args.impls:
        keep = set(args.impls.split(","))
        for w in workloads:
            w.impls = [i for i in w.impls if i in keep]
    if args.baseline:
        for w in workloads:
            if "ours" in w.impls:
                w.impls.insert(w.impls.index("ours") + 1, "baseline")
    notes = []
    if args.quick:
        notes.append(
            "QUICK run: objects, checkpoints and counts are smaller than the issue's (see the titles); "
            "one repetition. Run `python -m bench` for the full sizes."
        )
    return sizes, workloads, notes


def set_up(sizes, workloads, bar, baseline_ref=None):
    """nginx, the original's venv (when it runs), the baseline's (--baseline) and the data; each step reuses
    what a last run made."""
    nginx_bin = servers.ensure_nginx(_log)
    bar.update(1)
    original = None
    if any("original" in w.impls for w in workloads):
        original = peers.ensure_original_venv(VENV, WORKLOADS, _log)
        PYTHONS["original"] = str(peers.venv_python(VENV))
    if baseline_ref:
        built = peers.ensure_baseline_venv(
            BASELINE_VENV, baseline_ref, REPO, REPO / "build" / "bench-baseline", WORKLOADS, _log
        )
        PYTHONS["baseline"] = str(peers.venv_python(BASELINE_VENV))
        PYTHONS["baseline_commit"] = built["commit"]
    bar.update(1)
    bar.set_description("data")
    paths = prepare_data(sizes, workloads, _log)
    bar.update(1)
    return nginx_bin, original, paths


def run_everything(sizes, workloads, nginx_bin, original, paths, notes, bar):
    """Starts the servers, checks them, runs every workload, and stops the servers."""
    bar.set_description("servers")
    nginx = servers.Nginx(nginx_bin, PREFIX, DATA, LISTS)
    moto = servers.Moto()
    try:
        nginx.start()
        profiles = check_servers(nginx, sizes, paths)
        endpoints = {p: nginx.endpoint(p) for p in ("loopback", "s3like", "s3like_counted", "sink")}
        if any(w.profile == "moto" for w in workloads):
            endpoints["moto"] = start_moto(moto, sizes, workloads)
        bar.update(1)
        signed = check_unsigned_clients(endpoints, plan.keys(sizes)["big"], original, notes)
        bar.update(1)
        runs = run_workloads(sizes, workloads, endpoints, paths, signed, bar)
    finally:
        nginx.stop()
        moto.stop()
    return runs, profiles, signed


def check_servers(nginx, sizes, paths) -> dict:
    """curl's numbers for the two read profiles, and what every server must answer."""
    big_key = plan.keys(sizes)["big"]
    profiles = check_profiles(nginx, big_key, _log)
    for p in ("loopback", "s3like"):
        servers.check_read_server(
            nginx.endpoint(p), datagen.BUCKET, big_key, sizes.big, plan.keys(sizes)["small_prefix"]
        )
        servers.check_shared(
            nginx.endpoint(p),
            datagen.BUCKET,
            plan.keys(sizes)["shared_prefix"],
            sizes.manifest_keys,
            plan.SHARED_BODY,
            paths["_shared_etag"],
        )
    servers.check_sink(nginx.endpoint("sink"))
    servers.check_counted(
        nginx.endpoint("s3like_counted"),
        nginx.endpoint("s3like"),
        nginx.counted_log,
        datagen.BUCKET,
        plan.keys(sizes)["tiny"],
    )
    return profiles


def start_moto(moto, sizes, workloads) -> str:
    moto.start()
    t = time.time()
    moto.fill("bench", "keys/", sizes.list_keys if any(w.id == "W4" for w in workloads) else 1)
    moto.boto3().create_bucket(Bucket="bench-write")
    _log(f"moto: {sizes.list_keys:,} keys in {time.time() - t:.0f} s")
    return moto.endpoint


def check_unsigned_clients(endpoints, big_key, original, notes) -> dict:
    """Can ours and the original make an unsigned client (S3ClientConfig(unsigned=True))? Those that
    cannot sign with dummy keys instead, and the report says so."""
    signed = {"ours": False, "original": False}
    for impl, python in (("ours", sys.executable), ("original", str(peers.venv_python(VENV)) if original else None)):
        if python is None:
            continue
        chk = run_workload(
            python,
            dict(
                impl=impl, workload="client_check", endpoint=endpoints["loopback"], bucket=datagen.BUCKET, key=big_key
            ),
            120,
        )
        if not chk["ok"]:
            signed[impl] = True
            msg = chk["error"].strip().splitlines()[-1]
            notes.append(
                f"{impl}: S3ClientConfig(unsigned=True) failed ({msg}); its runs use signed requests "
                "with dummy keys instead (the servers ignore signatures)"
            )
            _log(notes[-1])
    return signed


def back_guest_memory(nbytes: int) -> None:
    """Touches and frees ``nbytes`` of memory before the node cache's rows. On a VM whose memory the host
    backs on first touch (measured here: 27 us per 4 KiB page, against ~0.1 us once backed), the page
    cache that a cache fill grows into pays that first; a machine that has run anything before has not.
    The rows then compare filling a cache, not the hypervisor's allocation; the cost is logged."""
    import mmap

    started = time.perf_counter()
    memory = mmap.mmap(-1, nbytes)
    for offset in range(0, nbytes, mmap.PAGESIZE):
        memory[offset] = 1
    memory.close()
    seconds = time.perf_counter() - started
    _log(
        f"memory: touched {nbytes / 2**30:.1f} GiB before the cache rows in {seconds:.1f} s "
        f"({seconds / (nbytes / mmap.PAGESIZE) * 1e6:.1f} us a page)"
    )


def run_workloads(sizes, workloads, endpoints, paths, signed, bar) -> list:
    """Every run; repetitions interleave the clients so that drift in the machine's load hits all,
    and each repetition starts with the next client: the first run after another workload is often
    the slowest (W1's first runs: 650 and 639 MB/s against 806-1,138), so no client always takes it."""
    runs = []
    backed = False
    with node_cache_folders() as cache_parent:
        for w in workloads:
            if w.from_runs_of:
                continue
            if w.params.get("cache") and not backed:
                back_guest_memory(2 * sizes.small_count * sizes.small_size)
                backed = True
            for rep in range(w.reps):
                turn = rep % len(w.impls)
                for impl in w.impls[turn:] + w.impls[:turn]:
                    bar.set_description(f"{w.id} {impl}" + (f" #{rep + 1}" if w.reps > 1 else ""))
                    if w.params.get("cache"):
                        os.sync()  # the caches written before are on disk: their writeback is not this run's
                    runs.append(_run_one(sizes, w, impl, rep, endpoints, paths, signed, cache_parent))
                    bar.update(1)
    return runs


def _run_one(sizes, w, impl, rep, endpoints, paths, signed, cache_parent) -> dict:
    if impl == "curl":
        res = _curl_run(endpoints[w.profile], w, paths.get(plan.keys(sizes)["checkpoint"]))
    else:
        spec = dict(workload_spec(sizes, w, impl, endpoints, paths, signed), cache_parent=cache_parent)
        res = run_workload(PYTHONS.get(impl, sys.executable), spec, sizes.timeout)
    res.update(workload=w.id, impl=impl, rep=rep)
    v = report.value_of(w, res) if res["ok"] else None
    _log(
        f"{w.id:4} {impl:8} "
        + (
            f"{v:,.1f} {w.metric}"
            if v is not None
            else f"FAILED: {(res['error'] or '').strip().splitlines()[-1][:200]}"
        )
    )
    return res


@contextlib.contextmanager
def node_cache_folders():
    """The folder the node cache rows make their caches in (under bench/data), removed when every
    workload has run. Not each run's at its end: on this VM's ext4, which has no journal, ext4 skips
    the inodes freed in the last ~35 s one by one when it makes a file (recently_deleted()), and
    making a file cost 160-300 us instead of 7-16 us after one run had removed its 10,000 entries:
    the next run's fill paid that on every object. A journaled ext4 or XFS does not skip them. Each
    run of those rows starts after os.sync(), so it pays the writeback of its own cache only."""
    parent = tempfile.mkdtemp(prefix="node-caches-", dir=DATA)
    try:
        yield parent
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def workload_spec(sizes, w, impl, endpoints, paths, signed) -> dict:
    """What bench/workloads.py is given for one run of workload ``w`` by client ``impl``."""
    spec = dict(
        w.params,
        impl=impl,
        workload=w.kind,
        endpoint=endpoints[w.profile],
        bucket="bench-write" if w.profile == "moto" and w.kind == "save" else datagen.BUCKET,
        signed=signed.get(
            "ours" if impl in ("ours_prefix", "ours_nocache", "ours_paged", "ours_objects", "baseline") else impl, False
        ),
    )
    if impl in ("boto3", "s3fs"):
        spec.update(w.peer_params)
    if "key" in spec and spec["key"] in paths:
        spec["path"] = paths[spec["key"]]
    if w.kind in ("tar", "tar_random"):  # sample 0 is W2's first object
        spec["first_sample_path"] = str(DATA / datagen.BUCKET / plan.keys(sizes)["small_prefix"] / "000000.bin")
    if w.kind in ("epochs", "shared_cache"):  # the files nginx serves: the local peers' and the checks'
        spec["data_dir"] = str(DATA / datagen.BUCKET)
    if w.profile == "s3like_counted":
        spec["access_log"] = str(PREFIX / servers.COUNTED_LOG)
    return spec


def describe_run(args, started, sizes, nginx_bin, original, profiles, signed, runs, notes) -> dict:
    """The run's settings and circumstances, for the report's header and notes."""
    ours_at_end = _fingerprint()
    if ours_at_end != started.ours:
        notes.append(
            f"our package changed during the run (from {started.ours} to {ours_at_end}): "
            "rows measured before and after the change are mixed"
        )
    import torch

    return dict(
        quick=args.quick,
        started=started.stamp,
        duration_s=round(time.time() - started.time, 1),
        cpus=os.cpu_count(),
        load_before=" ".join(f"{x:.2f}" for x in started.load),
        load_after=" ".join(f"{x:.2f}" for x in os.getloadavg()),
        python=platform.python_version(),
        platform=platform.platform(),
        torch=torch.__version__,
        ours=f"{_ours_version()} ({ours_at_end})",
        original=(original or {}).get("version", "not run"),
        nginx=servers.nginx_version(nginx_bin),
        versions=_versions(),
        sizes={k: v for k, v in sizes.__dict__.items()},
        profiles=profiles,
        servers_note=(
            f"nginx on 127.0.0.1: loopback (no shaping; curl {profiles['loopback']['bytes_per_s'] / 1e6:,.0f} MB/s), "
            f"s3like (ngx.sleep(0.02) in the access phase + limit_rate 90m per connection; curl "
            f"{profiles['s3like']['ttfb_s'] * 1e3:.1f} ms to first byte, {profiles['s3like']['bytes_per_s'] / 1e6:.1f} MB/s), "
            "sink (Lua: PutObject and multipart calls answered, bodies read and dropped); moto for W3c and W4; "
            "W4m's keys share one body and its manifest is generated with the listing pages (same keys, sizes, ETags). "
            "Every workload runs in a fresh process."
        ),
        notes=notes,
        signed=signed,
        load_runs=_load_range(runs),
    )


def write_results(out: Path, workloads, runs, meta) -> str:
    """latest.json, latest.md and latest.png in ``out``; returns the markdown table."""
    table = report.rows(workloads, runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(dict(meta=meta, rows=table, runs=runs), indent=1, default=str))
    md = report.markdown(table, meta)
    (out / "latest.md").write_text(md)
    report.chart(table, meta, out / "latest.png")
    return md


def _load_range(runs) -> str:
    loads = [r["load_1m"] for r in runs if r.get("load_1m") is not None]
    return f"{min(loads):.1f}–{max(loads):.1f}" if loads else "?"


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def serve(sizes: plan.Sizes) -> int:
    peers.ensure_main_packages(_log)
    workloads = plan.build(sizes, False)
    prepare_data(sizes, workloads, _log)
    nginx = servers.Nginx(servers.ensure_nginx(_log), PREFIX, DATA, LISTS)
    nginx.start()
    try:
        for p in ("loopback", "s3like", "s3like_counted", "sink"):
            print(f"{p:8} {nginx.endpoint(p)}", flush=True)
        print(f"objects: s3://{datagen.BUCKET}/" + ", ".join(plan.keys(sizes).values()), flush=True)
        print(
            "workload spec example: python bench/workloads.py '"
            + json.dumps(
                dict(
                    impl="ours",
                    workload="seq_read",
                    endpoint=nginx.endpoint("loopback"),
                    bucket=datagen.BUCKET,
                    key=plan.keys(sizes)["big"],
                    size=sizes.big,
                )
            )
            + "'  (Ctrl-C stops nginx)",
            flush=True,
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        nginx.stop()
    return 0


def _ours_version() -> str:
    import importlib.metadata as md

    try:
        return md.version("s3torchconnector")
    except md.PackageNotFoundError:
        return "?"


def _curl_run(endpoint: str, w, upload_path: str) -> dict:
    """curl's run of a workload: the GET of its object, or (a save to the sink) a PUT of the
    checkpoint file, the sink's ceiling. CPU time is curl's own, from the child-process accounting."""
    t = time.time()
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        url = f"{endpoint}/{datagen.BUCKET}/{w.params['key']}"
        if w.kind == "save":
            c = servers.curl_put(url, upload_path)
        else:
            c = servers.curl_get(url)
            if int(c["bytes"]) != w.params["size"]:
                raise RuntimeError(f"curl got {c['bytes']} bytes")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        res = dict(seconds=c["total_s"], bytes=int(c["bytes"]), ttfb_s=c.get("ttfb_s"), cpu_s=cpu)
        return dict(ok=True, error=None, result=res, wall_s=time.time() - t, load_1m=load)
    except Exception as e:  # noqa: BLE001 - reported in the table
        return dict(ok=False, error=repr(e), result=None, wall_s=time.time() - t, load_1m=load)
