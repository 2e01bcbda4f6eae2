"""The peers' Python environments.

- The original s3torchconnector 1.5.0 gets its own venv (bench/.venv-original) that also sees
  this interpreter's site-packages (a .pth file), so it uses the installed torch (no CUDA download)
  whether this interpreter is a venv or not. Its import name is ours too: the workload script drops our editable install's import hook and path entries when
  it runs there, and checks that ``s3torchconnector.__file__`` is inside that venv.
- ``--baseline REF``: our package built from another commit, in its own venv (bench/.venv-baseline), the
  same way, for an A/B of two builds in one run.
- boto3, s3fs, moto, tqdm, matplotlib and webdataset in this interpreter, installed with pip when missing.
"""

import importlib.util
import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

ORIGINAL_PACKAGES = ["s3torchconnector==1.5.0", "s3torchconnectorclient==1.5.0"]
# (import name, pip requirement) needed in the main interpreter by the harness and the peers.
MAIN_PACKAGES = [
    ("tqdm", "tqdm"),
    ("matplotlib", "matplotlib"),
    ("boto3", "boto3"),
    ("s3fs", "s3fs"),
    ("moto", "moto[server]>=5"),
    ("flask", "moto[server]>=5"),
    ("webdataset", "webdataset==1.0.2"),  # W8's peer (as in our test extra)
    ("wids", "wids==0.1.11"),  # W12r's peer: webdataset's indexed (random access) dataset
]


def ensure_main_packages(log) -> None:
    missing = sorted({req for name, req in MAIN_PACKAGES if importlib.util.find_spec(name) is None})
    if missing:
        log(f"pip install {' '.join(missing)}")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
        importlib.invalidate_caches()


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_original_venv(venv: Path, workload_script: Path, log) -> dict:
    """The venv of the original 1.5.0; returns what the workload script reports about it."""
    python = venv_python(venv)
    info = _probe(python, workload_script) if python.exists() else None
    if info and info.get("version") == "1.5.0" and info.get("inside_venv"):
        return info
    if not python.exists():
        log(f"creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        _see_main_site_packages(python)
    log("pip install " + " ".join(ORIGINAL_PACKAGES) + " (--no-deps) into the venv")
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--force-reinstall",
            *ORIGINAL_PACKAGES,
        ],
        check=True,
    )
    info = _probe(python, workload_script)
    if not info or info.get("version") != "1.5.0" or not info.get("inside_venv"):
        raise RuntimeError(f"the original 1.5.0 does not import from its venv: {info}")
    return info


def ensure_baseline_venv(venv: Path, ref: str, repo: Path, build_dir: Path, workload_script: Path, log) -> dict:
    """A venv holding our package as built from the git ref ``ref`` (an A/B of two builds in one run:
    the workloads' impl "baseline"); returns what the workload script reports about it. The wheel is
    built from a clean checkout of ``ref`` in ``build_dir`` (kept between runs: the CRT is built once)."""
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", f"{ref}^{{commit}}"], capture_output=True, text=True
    )
    if commit.returncode != 0:
        raise RuntimeError(f"--baseline {ref!r} names no commit: {commit.stderr.strip()}")
    commit_id = commit.stdout.strip()
    python = venv_python(venv)
    info = _probe(python, workload_script, "baseline") if python.exists() else None
    if info and info.get("inside_venv") and (venv / "baseline-commit").read_text() == commit_id:
        return {**info, "commit": commit_id}
    source, wheels = build_dir / "source", build_dir / "wheels"
    subprocess.run(["rm", "-rf", str(source), str(wheels)], check=True)
    log(f"building the baseline {ref} ({commit_id[:10]}) into {build_dir}")
    archive = subprocess.run(["git", "-C", str(repo), "archive", commit_id], capture_output=True, check=True).stdout
    source.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    third_party = repo / "third_party"
    if third_party.is_dir():  # the pinned CRT archive, so the build needs no download
        subprocess.run(["cp", "-r", str(third_party), str(source)], check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(source),
        ]
        + ["-C", f"build-dir={build_dir / 'build'}"],
        check=True,
    )
    if not python.exists():
        log(f"creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        _see_main_site_packages(python)
    wheel = next(wheels.glob("s3torchconnector-*.whl"))
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--force-reinstall"]
        + [str(wheel)],
        check=True,
    )
    (venv / "baseline-commit").write_text(commit_id)
    info = _probe(python, workload_script, "baseline")
    if not info or not info.get("inside_venv"):
        raise RuntimeError(f"the baseline does not import from its venv: {info}")
    return {**info, "commit": commit_id}


def _see_main_site_packages(python: Path) -> None:
    """--system-site-packages would show the base interpreter's packages, which lack torch when the
    harness runs from a venv: name this interpreter's own site-packages instead. Its .pth files are
    not run from there, so our editable install's import hook stays out."""
    venv_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()])
    Path(venv_site, "_bench_main_site_packages.pth").write_text("".join(f"{p}\n" for p in paths))


def _probe(python: Path, workload_script: Path, impl: str = "original"):
    out = subprocess.run(
        [str(python), "-s", str(workload_script), json.dumps({"impl": impl, "workload": "probe"})],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return {"error": out.stderr[-2000:]}


def clean_env() -> dict:
    """The environment of a workload process: nothing that changes which package is imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    # Endpoints are passed explicitly; a variable here must not redirect a peer.
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        env.pop(k, None)
    for k in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(k, None)
    env["AWS_ACCESS_KEY_ID"] = "testing"  # every request is to 127.0.0.1, unsigned or to moto
    env["AWS_SECRET_ACCESS_KEY"] = "testing"
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env
