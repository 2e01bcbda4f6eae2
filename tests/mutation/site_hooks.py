"""Startup of every Python process of a mutation run; run.py copies it into the scratch copy as
s3tc_mutation_site.py, imported by a sitecustomize.py on PYTHONPATH (so also in the interpreters
that tests start: spawned DataLoader workers, ranks, ``python -c`` children).

It takes the editable install's import hook (which maps ``s3torchconnector`` to the developer's
working tree) out of ``sys.meta_path`` and the working tree's ``python/`` out of ``sys.path``, so
``s3torchconnector`` is the mutated copy first on PYTHONPATH. While mutmut maps functions to the
tests that call them (MUTANT_UNDER_TEST=stats), a process other than pytest's notes the functions
it ran in a file, which pytest_plugin.py adds to the test's own calls (mutmut sees only those).

Nothing here acts outside a mutation run: run.py sets the variables below.
"""

import os
import sys

ROOT = os.environ.get("S3TC_MUTATION_ROOT", "")  # the directory the package must be imported from
HIDE = os.environ.get("S3TC_MUTATION_HIDE", "")  # the working tree's python/, never imported
HITS = os.environ.get("S3TC_MUTATION_HITS", "")  # where child processes note the functions they ran
PYTEST_PID = "S3TC_MUTATION_PYTEST_PID"


def _same(a: str, b: str) -> bool:
    try:
        return os.path.realpath(a or ".") == os.path.realpath(b)
    except OSError:
        return False


def startup() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not type(finder).__module__.startswith("_editable_skbc_")]
    if HIDE:
        sys.path[:] = [entry for entry in sys.path if not _same(entry, HIDE)]
    if os.environ.get("MUTANT_UNDER_TEST") == "stats" and HITS:
        try:
            record_hits_of_children()
        except ImportError:  # mutmut is not importable here: this process's calls go unnoted
            pass


def record_hits_of_children() -> None:
    """In a process other than pytest's, a trampoline's call is written to HITS/<pid>.hits; the
    pytest process reads those files when the test ends (pytest_plugin.py)."""
    from mutmut.mutation import trampoline

    original = trampoline.record_trampoline_hit
    if getattr(original, "_s3tc_children", False):
        return
    seen: set = set()
    owner = [0]

    def record_trampoline_hit(name, caller=None):
        pid = os.getpid()
        if str(pid) == os.environ.get(PYTEST_PID):
            return original(name, caller=caller)
        if owner[0] != pid:  # a forked child starts with its parent's set
            owner[0] = pid
            seen.clear()
        if name not in seen:
            seen.add(name)
            with open(os.path.join(HITS, f"{pid}.hits"), "a") as hits:
                hits.write(name + "\n")
        return None

    record_trampoline_hit._s3tc_children = True
    trampoline.record_trampoline_hit = record_trampoline_hit
