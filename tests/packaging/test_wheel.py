"""The wheel as users get it: built, repaired by auditwheel, installed without a compiler into a fresh
venv outside the source tree, and used against S3 there.

Marked ``wheel`` (about a minute, most of it installing torch into the venv): a developer may skip it
with ``pytest -m "not wheel"``; CI runs it.
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.wheel

ROUND_TRIP = r"""
import hashlib, os, subprocess, sys
import s3torchconnector
from s3torchconnector import S3MapDataset
from s3torchconnector._s3client import S3Client

bucket, endpoint = sys.argv[1], sys.argv[2]
native = s3torchconnector._native.__file__
print("module", s3torchconnector.__file__)
print("ldd", subprocess.run(["ldd", native], capture_output=True, text=True).stdout.replace("\n", " | "))
client = S3Client("us-east-1", endpoint=endpoint)
data = os.urandom(20 * 1024 * 1024 + 5)  # a multipart upload and a multi-part GET
with client.put_object(bucket, "wheel/big.bin") as writer:
    writer.write(data)
with client.put_object(bucket, "wheel/small.bin") as writer:
    writer.write(b"small")
dataset = S3MapDataset.from_prefix(f"s3://{bucket}/wheel/", region="us-east-1", endpoint=endpoint)
got = {item.key: hashlib.sha256(item.read()).hexdigest() for item in dataset}
assert got == {"wheel/big.bin": hashlib.sha256(data).hexdigest(),
               "wheel/small.bin": hashlib.sha256(b"small").hexdigest()}, got
print("round trip ok", s3torchconnector.__version__)
"""


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_repaired_wheel_installs_without_compiling_and_round_trips(tmp_path, s3):
    # The build reuses the build tree of the editable install (the CRT is already compiled there).
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ]
    )
    (built,) = (tmp_path / "dist").glob("s3torchconnector-*.whl")
    run([sys.executable, "-m", "auditwheel", "repair", "-w", str(tmp_path / "wheelhouse"), str(built)])
    (wheel,) = (tmp_path / "wheelhouse").glob("s3torchconnector-*manylinux_*.whl")
    shown = " ".join(run([sys.executable, "-m", "auditwheel", "show", str(wheel)]).split())  # unwrapped
    assert "is consistent with the following platform tag" in shown and "manylinux_" in shown, shown
    names = zipfile.ZipFile(wheel).namelist()
    # libcrypto is grafted in (renamed, so it cannot clash with another copy in the process).
    assert any(n.startswith("s3torchconnector.libs/libcrypto-") for n in names), names

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}:/usr/bin:/bin", PIP_DISABLE_PIP_VERSION_CHECK="1")
    run([python, "-m", "pip", "install", "-q", "torch==2.13.0"], env=env, cwd=tmp_path)
    # --no-index and --no-deps: nothing is fetched, and pip has nothing it could compile.
    installed = run(
        [python, "-m", "pip", "install", "-v", "--no-index", "--no-deps", str(wheel)], env=env, cwd=tmp_path
    )
    assert "Building wheel" not in installed and "setup.py" not in installed, installed

    out = run([python, "-c", ROUND_TRIP, s3.bucket, s3.endpoint], env=env, cwd=tmp_path)
    assert "round trip ok" in out, out
    module_line = next(line for line in out.splitlines() if line.startswith("module "))
    assert module_line.startswith(f"module {venv}/"), module_line  # the venv's copy, not the source tree's
    ldd = next(line for line in out.splitlines() if line.startswith("ldd "))
    assert "s3torchconnector.libs/libcrypto-" in ldd and str(REPO) not in ldd, ldd
