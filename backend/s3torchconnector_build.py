"""The build backend: scikit-build-core's, except that an sdist also carries the pinned CRT sources.

`python -m build` makes the sdist first and the wheel from it; with the awscrt archive inside
(third_party/, checked by sha256 against cmake/awscrt.pin), building from the sdist needs no network.
"""

import os
import shutil
import subprocess

from scikit_build_core.build import (  # noqa: F401 (the hooks this backend passes through)
    build_editable,
    build_wheel,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)
from scikit_build_core.build import build_sdist as _scikit_build_sdist

_SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_sdist(sdist_directory, config_settings=None):
    _fetch_awscrt_archive()
    return _scikit_build_sdist(sdist_directory, config_settings)


def _fetch_awscrt_archive():
    """Runs the build's own fetch-and-verify step (one copy of it, in CMake)."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("Making the sdist needs cmake on PATH to fetch the pinned CRT sources")
    script = os.path.join(_SOURCE_DIR, "cmake", "FetchAwsCrt.cmake")
    subprocess.run([cmake, f"-DS3TC_SOURCE_DIR={_SOURCE_DIR}", "-P", script], check=True)
