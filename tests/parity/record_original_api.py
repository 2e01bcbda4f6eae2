"""Record the public API of the original s3torchconnector 1.5.0 into original_api_1.5.0.json.

Run by hand (it downloads the original packages), not by pytest:

    python tests/parity/record_original_api.py [--venv DIR]

It makes a plain venv (no system site-packages, so our editable install cannot leak in),
installs the original there, and runs api_snapshot.py inside it. tests/unit/test_api_parity.py
then holds our package to the record. --venv keeps the venv in DIR (reused if it exists), e.g.
to run that test against the original itself as a check of the test.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORD = HERE / "original_api_1.5.0.json"

# torch is pinned exactly: a CPU build of this version lies on local disk, where a looser pin
# would download GBs of CUDA wheels. tenacity is the dcp extra's dependency, lightning the
# lightning extra's, so that both subpackages import.
REQUIREMENTS = [
    "torch==2.13.0",
    "s3torchconnector==1.5.0",
    "s3torchconnectorclient==1.5.0",
    "lightning",
    "tenacity",
]


def make_venv(path: Path) -> Path:
    """A plain venv at path (reused when it already has a python), returning its python."""
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return python


def clean_environment() -> dict:
    """Our environment without anything that would put our package on the venv's path."""
    environment = dict(os.environ)
    environment.pop("PYTHONPATH", None)
    environment.pop("PYTHONHOME", None)
    return environment


def install_original(python: Path, extra=()) -> None:
    command = [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS, *extra]
    subprocess.run(command, check=True, env=clean_environment())


def record(python: Path, out: Path) -> None:
    """Run the describer inside the venv, from a directory where nothing of ours is importable."""
    command = [str(python), str(HERE / "api_snapshot.py"), str(out)]
    with tempfile.TemporaryDirectory() as cwd:
        subprocess.run(command, check=True, cwd=cwd, env=clean_environment())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="keep (or reuse) the venv in this directory")
    parser.add_argument("--with-pytest", action="store_true", help="also install pytest there")
    arguments = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        python = make_venv(arguments.venv or Path(scratch) / "venv")
        install_original(python, ["pytest"] if arguments.with_pytest else [])
        record(python, RECORD)
    size = RECORD.stat().st_size
    print(f"wrote {RECORD} ({size} bytes) in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
