#!/usr/bin/env python
"""Mutation testing of python/s3torchconnector with mutmut, in a scratch copy of the package.

    pip install "mutmut==3.8.1"                  # the pin of pyproject's `dev` extra
    python tests/mutation/run.py                 # every module, in one mutmut run
    python tests/mutation/run.py _epochs/order.py s3reader/ranged.py
    python tests/mutation/run.py --separately _epochs/order.py    # one run per module, its own tests only
    python tests/mutation/run.py --retest        # after adding tests: only the mutants that survived
    python tests/mutation/run.py --head          # the committed sources and tests, not the working tree's
    python tests/mutation/run.py manifest.py --mutants 's3torchconnector.manifest.x_main*'   # some only
    python tests/mutation/run.py --list          # the modules and the tests each one gets
    python tests/mutation/run.py --report        # the table of the last results again

A run copies the package's sources (the files git tracks or would track under python/, as they are
in the working tree), the tests and README.md into ``<workdir>/<run>/`` (``build/mutation`` by
default, which git ignores), adds the built ``_native*.so`` that the installed package loads, and
runs ``mutmut run`` there, mutating only the chosen modules. The developer's working tree is never
written to. Every Python process of the run (pytest, and the interpreters the tests start) imports
the scratch copy: a ``sitecustomize.py`` on PYTHONPATH takes the editable install's import hook out
of ``sys.meta_path`` (site_hooks.py), and a pytest plugin stops the run if the tests would import
the package from anywhere else (pytest_plugin.py).

The tests a module gets are tests/unit (the in-memory MockS3Client) plus its e2e files in MODULES
below: those that exercise what the unit tests cannot reach (the native client, moto over HTTP,
DataLoader workers, DCP), and with --slow its files in SLOW too (ranks, resumes in new processes:
a minute or more each, paid again by every surviving mutant). A module not listed gets tests/unit only; modules mutated in one
run pool their e2e files. mutmut runs those tests once to learn which tests call each function
(calls made in the processes a test starts count too, through site_hooks.py), then, for each
mutant, only those tests, fastest first, with -x, in a process forked from a server that has
imported pytest, torch and the tests once.

It prints per module the mutants detected out of all, the mutation score and the file with the
surviving mutants' diffs; the numbers go to ``<workdir>/results.json``, mutmut's output to
``<workdir>/<run>/mutmut.log``. mutmut mutates function and method bodies only (not module-level
constants or class attributes). Score = (killed + timeout) / mutants tried; a mutant that no selected
test reaches ("no tests") counts as surviving. Stop a long run with Ctrl-C: mutmut keeps what it
tried, and ``--report`` reads it.

Not run in CI: minutes per module, an hour or more for the package on two cores.
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PACKAGE = "s3torchconnector"
MUTMUT_VERSION = "3.8.1"

UNIT = ["tests/unit"]
ALSO_COPY = ["README.md"]  # files the tests read besides python/ and tests/ (the API parity test reads README)

# Module (relative to python/s3torchconnector) -> the e2e tests it gets besides tests/unit, in the
# order the run goes through them (the ones with the most logic first). File paths or pytest node
# ids; keep each module's list to what reaches it, since every mutant of a function reruns every
# selected test that called that function.
MODULES = {
    "_epochs/order.py": ["tests/e2e/test_elastic_resume.py"],  # the order re-dealt to another world size
    "_epochs/state.py": ["tests/e2e/test_elastic_resume.py"],
    "_epochs/iterator.py": [
        "tests/e2e/test_elastic_resume.py",
        "tests/e2e/test_dataloader.py",  # workers under fork, spawn and forkserver
    ],
    "s3iterable_dataset.py": ["tests/e2e/test_datasets.py", "tests/e2e/test_dataloader.py"],
    "s3map_dataset.py": ["tests/e2e/test_datasets.py", "tests/e2e/test_map_dataset_order.py"],
    "s3dataset_base.py": ["tests/e2e/test_datasets.py", "tests/e2e/test_manifest.py"],
    "_s3dataset_common.py": ["tests/e2e/test_datasets.py"],
    "_listing/sources.py": ["tests/e2e/test_datasets.py"],
    "s3reader/sequential.py": ["tests/e2e/test_readers.py"],
    "s3reader/ranged.py": ["tests/e2e/test_readers.py"],
    "s3reader/dcp_optimized.py": ["tests/e2e/test_readers.py", "tests/e2e/test_dcp.py"],
    "s3reader/s3reader.py": ["tests/e2e/test_readers.py"],
    "s3reader/constructor.py": ["tests/e2e/test_readers.py"],
    "s3reader/protocol.py": [],
    "s3writer.py": ["tests/e2e/test_writer_checkpoint.py"],
    "_listing/manifest.py": ["tests/e2e/test_manifest.py"],
    # The command's main. test_manifest.py runs it as `python -m`, where no mutant is active (the
    # module is __main__), and also calls main() in-process (test_the_manifest_command_*), where one is.
    "manifest.py": ["tests/e2e/test_manifest.py"],
    "_listing/manifest_entries.py": ["tests/e2e/test_manifest.py"],
    "_tar/samples.py": ["tests/e2e/test_tar_shards.py"],
    "_tar/reader.py": ["tests/e2e/test_tar_shards.py"],
    "_stream_file.py": ["tests/e2e/test_tar_shards.py", "tests/e2e/test_manifest.py"],
    "dcp/s3_file_system.py": ["tests/e2e/test_dcp.py"],
    "dcp/s3_prefix_strategy.py": ["tests/e2e/test_dcp.py"],
    "_s3client/_s3client.py": ["tests/e2e/test_client_operations.py"],
    "_s3client/s3client_config.py": ["tests/e2e/test_client_operations.py"],
    "_s3client/list_object_stream.py": ["tests/e2e/test_client_operations.py"],
    "_s3client/object_info.py": ["tests/e2e/test_client_operations.py"],
    "s3checkpoint.py": ["tests/e2e/test_writer_checkpoint.py"],
    "lightning/s3_lightning_checkpoint.py": ["tests/e2e/test_lightning.py"],
    "_logging.py": ["tests/e2e/test_logging.py"],
    "_s3uri.py": ["tests/e2e/test_client_errors.py"],
    "_validation.py": ["tests/e2e/test_client_errors.py"],
    "_user_agent.py": ["tests/e2e/test_client_operations.py"],
    "_s3bucket_key_data.py": [],
    "_s3client/_in_memory_s3.py": [],  # the unit tests' stand-in for S3; its own tests are unit tests
    "_s3client/_mock_s3client.py": [],
    "__init__.py": [],
    "_s3client/__init__.py": [],
    "dcp/__init__.py": ["tests/e2e/test_dcp.py"],
    "lightning/__init__.py": ["tests/e2e/test_lightning.py"],
    "s3reader/__init__.py": [],
}
# With --slow as well: e2e files that reach a module only through processes they start, and take a
# minute or more each (a surviving mutant reruns all of them): ranks, resumes in new processes.
SLOW = {
    "_epochs/order.py": ["tests/e2e/test_distributed.py"],
    "_epochs/state.py": ["tests/e2e/test_resume.py"],
    "_epochs/iterator.py": ["tests/e2e/test_resume.py", "tests/e2e/test_distributed.py"],
    "s3iterable_dataset.py": ["tests/e2e/test_resume.py", "tests/e2e/test_distributed.py"],
    "_s3client/_s3client.py": ["tests/e2e/test_client_processes.py"],
}
OPTIONS: dict = {}  # from the command line: slow
# No function to mutate.
NOT_MUTATED = {"_version.py", "_epochs/__init__.py", "_listing/__init__.py", "_tar/__init__.py"}

STATUS_BY_EXIT_CODE = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
    37: "type check",
    None: "not checked",
}  # mutmut's own table (mutmut/stats.py); anything else is "suspicious"
DETECTED = {"killed", "timeout", "segfault", "type check"}


SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


def log(*args) -> None:
    print(*args, flush=True)


def committed_files(workdir: Path) -> list:
    """The files of python/, tests/ and README.md as committed in HEAD, unpacked in <workdir>/_head:
    a consistent state when others are editing the working tree."""
    head = workdir / "_head"
    if head.exists():
        shutil.rmtree(head)
    head.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD", "python", "tests", *ALSO_COPY],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(head)], input=archive, check=True)
    OPTIONS["source"] = head
    return sorted(
        path.relative_to(head)
        for top in ("python", "tests")
        for path in (head / top).rglob("*")
        if path.is_file() and path.relative_to(head).parts[:2] != ("tests", "mutation")
    )


def source_files() -> list:
    """The files under python/ and tests/ that git tracks or would track, as in the working tree."""
    OPTIONS["source"] = REPO
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "python", "tests"],
            cwd=REPO,
            check=True,
            capture_output=True,
        ).stdout.decode()
        files = [Path(name) for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: everything but caches
        files = [
            path.relative_to(REPO)
            for top in ("python", "tests")
            for path in (REPO / top).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        ]
    return sorted(f for f in files if (REPO / f).is_file() and f.parts[:2] != ("tests", "mutation"))


def native_module() -> Path:
    """The _native*.so the installed package loads (an editable install keeps it in site-packages)."""
    name = f"{PACKAGE}._native"
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None or type(finder).__module__.startswith("_frozen_importlib"):
            continue
        try:
            spec = find_spec(name, None)
        except Exception:
            continue
        if spec is not None and spec.origin and spec.origin.endswith((".so", ".pyd")):
            return Path(spec.origin)
    spec = importlib.util.find_spec(name)  # imports the package (and torch)
    if spec is None or not spec.origin:
        sys.exit(f"{name} is not built: install the package first (pip install -e .)")
    return Path(spec.origin)


def module_names(requested: list) -> list:
    package = REPO / "python" / PACKAGE
    present = sorted(
        str(path.relative_to(package)) for path in package.rglob("*.py") if "__pycache__" not in path.parts
    )
    if not requested:
        listed = [m for m in MODULES if m in present]
        return listed + [m for m in present if m not in MODULES and m not in NOT_MUTATED]
    chosen = []
    for name in requested:
        name = name.removeprefix(f"python/{PACKAGE}/").removeprefix(f"{PACKAGE}/")
        if name not in present:
            sys.exit(f"no module {name} under python/{PACKAGE} (try --list)")
        chosen.append(name)
    return chosen


def tests_of(*modules: str) -> list:
    """tests/unit and the e2e tests of the modules (of all of them, for modules mutated in one run)."""
    tests = list(UNIT)
    for module in modules:
        for test in MODULES.get(module, []) + (SLOW.get(module, []) if OPTIONS.get("slow") else []):
            if test not in tests and (REPO / test.split("::")[0]).exists():
                tests.append(test)
    return tests


def prepare(scratch: Path, modules: list, files: list, native: Path) -> dict:
    if scratch.exists():
        shutil.rmtree(scratch)
    for relative in files:
        # python/<package> -> src/<package>: mutmut names mutants after the path, less a "src." prefix.
        target = scratch / ("src" / Path(*relative.parts[1:]) if relative.parts[0] == "python" else relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(OPTIONS["source"] / relative, target)
    shutil.copy2(native, scratch / "src" / PACKAGE / native.name)
    for extra in ALSO_COPY:
        if (OPTIONS["source"] / extra).is_file():
            shutil.copy2(OPTIONS["source"] / extra, scratch / extra)
    site = scratch / "_site"
    site.mkdir()
    shutil.copy2(HERE / "site_hooks.py", site / "s3tc_mutation_site.py")
    shutil.copy2(HERE / "pytest_plugin.py", site / "s3tc_mutation_plugin.py")
    (site / "sitecustomize.py").write_text("import s3tc_mutation_site\n\ns3tc_mutation_site.startup()\n")
    (scratch / "hits").mkdir()

    def toml_list(items):
        return "[" + ", ".join(json.dumps(str(item)) for item in items) + "]"

    (scratch / "pyproject.toml").write_text(
        "# Written by tests/mutation/run.py for one mutation run.\n"
        "[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"also_copy = {toml_list(ALSO_COPY)}\n"
        f"only_mutate = {toml_list(f'src/{PACKAGE}/{module}' for module in modules)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests_of(*modules))}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "s3tc_mutation_plugin", "-W", "ignore"]\n'
        'process_isolation = "forkserver"\n'
        "use_git_change_detection = false\n"
        "\n"
        "[tool.pytest.ini_options]\n"
        'testpaths = ["tests"]\n'
    )
    mutated = scratch / "mutants" / "src"
    # It must exist when mutmut starts: Python remembers a sys.path entry it found missing, and would
    # then take the installed package's directory (which holds only _native*.so) for the package.
    mutated.mkdir(parents=True)
    return environment(scratch)


def environment(scratch: Path) -> dict:
    mutated, site = scratch / "mutants" / "src", scratch / "_site"
    env = dict(os.environ)
    for variable in ("MUTANT_UNDER_TEST", "PYTEST_ADDOPTS", "PYTHONSTARTUP"):
        env.pop(variable, None)
    env.update(
        PYTHONPATH=os.pathsep.join([str(mutated), str(site)]),
        S3TC_MUTATION_ROOT=str(mutated),
        S3TC_MUTATION_HIDE=str(REPO / "python"),
        S3TC_MUTATION_HITS=str(scratch / "hits"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def refresh(scratch: Path, files: list) -> dict:
    """The sources and tests again, over a kept scratch copy: mutmut makes the mutants of a changed
    source file again and forgets the results of the functions that changed, keeps the others, and
    collects what the new tests call (copying only the tests would pair new tests with old code)."""
    if not (scratch / "mutants").is_dir():
        sys.exit(f"nothing to test again in {scratch}: run without --retest first")
    for relative in files:
        target = scratch / ("src" / Path(*relative.parts[1:]) if relative.parts[0] == "python" else relative)
        if target.exists() and target.read_bytes() == (OPTIONS["source"] / relative).read_bytes():
            continue  # unchanged: keep its time, so mutmut keeps its mutants and their results
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(OPTIONS["source"] / relative, target)
    return environment(scratch)


def check_imports(scratch: Path, env: dict) -> None:
    """A process and a process it starts both import the scratch copy (its sources, before mutmut
    copies them to mutants/, stand in for it), not the developer's working tree."""
    probe = (
        "import subprocess, sys, s3torchconnector, s3torchconnector._native as n\n"
        "print(s3torchconnector.__file__); print(n.__file__)\n"
        "sys.stdout.flush()\n"
        "subprocess.run([sys.executable, '-c', 'import s3torchconnector; print(s3torchconnector.__file__)'], check=True)\n"
    )
    src = scratch / "src"
    env = dict(env, PYTHONPATH=env["PYTHONPATH"].replace(str(scratch / "mutants" / "src"), str(src)))
    out = subprocess.run([sys.executable, "-c", probe], cwd=scratch, env=env, capture_output=True, text=True)
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 3 or not all(line.startswith(str(src) + os.sep) for line in lines):
        sys.exit(f"the scratch copy is not what the tests would import:\n{out.stdout}{out.stderr}")


def summarize(scratch: Path, module: str) -> dict:
    meta = scratch / "mutants" / "src" / PACKAGE / f"{module}.meta"
    codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    counts: dict = {}
    survivors = []
    for name, code in sorted(codes.items(), key=lambda item: natural(item[0])):
        status = STATUS_BY_EXIT_CODE.get(code, "suspicious")
        counts[status] = counts.get(status, 0) + 1
        if status not in DETECTED and status != "not checked":
            survivors.append({"mutant": name, "status": status})
    detected = sum(counts.get(status, 0) for status in DETECTED)
    tried = len(codes) - counts.get("not checked", 0)  # an interrupted run leaves some not checked
    return {
        "mutants": tried,
        "detected": detected,
        "score": round(100.0 * detected / tried, 1) if tried else None,
        "counts": counts,
        "survivors": survivors,
    }


def natural(name: str):
    base, _, number = name.rpartition("_")
    return (base, int(number) if number.isdigit() else 0)


def show_survivors(scratch: Path, env: dict, survivors: list) -> str:
    """Each survivor's diff (one `mutmut show` each, about a second: "no tests" ones are only named)."""
    text = [f"# {s['mutant']}: no tests" for s in survivors if s["status"] == "no tests"]
    for survivor in [s for s in survivors if s["status"] != "no tests"]:
        shown = subprocess.run(
            [sys.executable, "-m", "mutmut", "show", survivor["mutant"]],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
        )
        text.append(shown.stdout.strip() or shown.stderr.strip())
    return "\n\n".join(text)


def run_batch(
    modules: list, workdir: Path, files: list, native: Path, jobs: int, show: bool, retest: dict = None
) -> dict:
    """One mutmut run over ``modules``: their mutants, and tests/unit plus all their e2e tests. With
    ``retest`` (the last results), the run's scratch copy is kept, its tests are copied again from
    the working tree, and only the mutants that were not detected are tried again."""
    name = modules[0].replace("/", "__").removesuffix(".py") if len(modules) == 1 else "modules"
    again = list(OPTIONS.get("mutants") or [])
    if retest:
        name = retest[modules[0]]["run"]
        again = [s["mutant"] for m in modules for s in retest[m]["survivors"]]
    scratch = workdir / name
    if retest:
        env = refresh(scratch, files)
    else:
        env = prepare(scratch, modules, files, native)
    check_imports(scratch, env)
    tests = tests_of(*modules)
    log(f"\n== {', '.join(modules)}\n   tests: {' '.join(tests)}\n   in {scratch}")
    if retest:
        log(f"   again: the {len(again)} mutants not detected last time")
        if not again:
            return {m: retest[m] for m in modules}
    started = time.monotonic()
    with open(scratch / "mutmut.log", "a" if retest else "w") as out:
        mutmut = subprocess.Popen(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *again],
            cwd=scratch,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            mutmut.wait()
        except KeyboardInterrupt:  # mutmut got it too: it stops and keeps the mutants it tried
            log("interrupted: waiting for mutmut to stop")
            mutmut.wait()
    seconds = round(time.monotonic() - started)
    if mutmut.returncode != 0:
        text = (scratch / "mutmut.log").read_text(errors="replace")
        tail = "\n".join(line for line in text.splitlines() if line[:1] not in SPINNER)[-3000:]
        log(f"mutmut failed ({mutmut.returncode}); the end of {scratch / 'mutmut.log'}:\n{tail}")
        for name in ("pytest-failures.txt", "pytest-internal-error.txt"):
            if (scratch / name).exists():
                log(f"{name}:\n" + (scratch / name).read_text()[-3000:])
    results = {}
    for module in modules:
        result = summarize(scratch, module)
        result.update(module=module, seconds=seconds, run=name, tests=tests_of(module), mutmut_exit=mutmut.returncode)
        if retest:  # the score of the first run, for "before -> after"
            first = retest[module].get("before") or retest[module]
            result["before"] = {key: first[key] for key in ("detected", "mutants", "score")}
        results[module] = result
        log(line(result))
        stale = scratch / f"survivors-{module.replace('/', '__')}.txt"
        if stale.exists():
            stale.unlink()
        if result["survivors"]:
            diffs = show_survivors(scratch, env, result["survivors"])
            result["survivors_file"] = str(scratch / f"survivors-{module.replace('/', '__')}.txt")
            Path(result["survivors_file"]).write_text(diffs + "\n")
            if show:
                log(diffs)
            else:
                log(f"   survivors: {result['survivors_file']}")
    return results


def line(result: dict) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result["counts"].items()))
    score = "-" if result["score"] is None else f"{result['score']:.1f}%"
    before = result.get("before")
    was = f"  (first run {before['detected']}/{before['mutants']})" if before else ""
    return (
        f"{result['module']:<36} {result['detected']:>4}/{result['mutants']:<4} {score:>7}"
        f"  ({counts or 'no mutants'}){was}"
    )


def report(results: dict) -> None:
    log(f"\n{'module':<36} {'killed/all':>9} {'score':>7}")
    detected = total = 0
    for result in results.values():
        log(line(result))
        detected += result["detected"]
        total += result["mutants"]
    if total:
        log(f"{'all':<36} {detected:>4}/{total:<4} {100.0 * detected / total:>6.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules under python/s3torchconnector (default: all)")
    parser.add_argument("--workdir", type=Path, default=REPO / "build" / "mutation", help="scratch directory")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests, and stop")
    parser.add_argument("--report", action="store_true", help="print the last results, and stop")
    parser.add_argument("--show", action="store_true", help="print the surviving mutants' diffs")
    parser.add_argument(
        "--head",
        action="store_true",
        help="mutate and test python/ and tests/ as committed in HEAD, not as they are in the working tree",
    )
    parser.add_argument(
        "--mutants",
        nargs="+",
        metavar="NAME",
        help="only these mutants (mutmut's names or globs, e.g. 's3torchconnector.manifest.x_main*')",
    )
    parser.add_argument(
        "--slow", action="store_true", help="add the e2e files in SLOW (ranks, resumes in new processes)"
    )
    parser.add_argument(
        "--retest",
        action="store_true",
        help="try again only the mutants the last run did not detect, with the sources and tests as they are now",
    )
    parser.add_argument(
        "--separately",
        action="store_true",
        help="one mutmut run per module, with only its own e2e tests (slower: each run first runs its tests twice)",
    )
    args = parser.parse_args()
    OPTIONS["slow"] = args.slow
    OPTIONS["mutants"] = args.mutants
    workdir = args.workdir.resolve()
    results_file = workdir / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}

    if args.list:
        for module in module_names(args.modules):
            log(f"{module:<36} {' '.join(tests_of(module))}")
        return
    if args.report:  # read again from the runs' scratch copies, which an interrupted run also leaves
        for module in args.modules or list(results):
            run = results.get(module, {}).get("run") or "modules"
            for scratch in (workdir / run, workdir / module.replace("/", "__").removesuffix(".py")):
                if (scratch / "mutants" / "src" / PACKAGE / f"{module}.meta").exists():
                    kept = {k: v for k, v in results.get(module, {}).items() if k in ("before", "tests")}
                    results[module] = dict(summarize(scratch, module), module=module, run=scratch.name, **kept)
                    break
        results_file.write_text(json.dumps(results, indent=1) + "\n")
        report({m: results[m] for m in (args.modules or results) if m in results})
        return
    try:
        import mutmut
    except ImportError:
        sys.exit(f'mutmut is not installed: pip install "mutmut=={MUTMUT_VERSION}"')
    if mutmut.__version__ != MUTMUT_VERSION:
        log(f"warning: mutmut {mutmut.__version__}; this runner is tried with {MUTMUT_VERSION}")
    if (
        workdir == REPO
        or REPO in workdir.parents
        and not (subprocess.run(["git", "check-ignore", "-q", str(workdir)], cwd=REPO).returncode == 0)
    ):
        sys.exit(f"{workdir} is in the working tree and not ignored by git: choose another --workdir")

    modules = module_names(args.modules) if args.modules or not args.retest else list(results)
    files = committed_files(workdir) if args.head else source_files()
    native = native_module()
    log(f"mutating {len(modules)} module(s) in {workdir}, with {native.name} from {native.parent}")
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if args.retest:
        missing = [m for m in modules if m not in results]
        if missing:
            sys.exit(f"no earlier results for {missing}: run them without --retest first")
        runs: dict = {}
        for module in modules:
            runs.setdefault(results[module]["run"], []).append(module)
        batches = list(runs.values())
    else:
        batches = [[module] for module in modules] if args.separately else [modules]
    for batch in batches:
        before = {m: results[m] for m in batch} if args.retest else None
        results.update(run_batch(batch, workdir, files, native, args.jobs, args.show, before))
        results_file.write_text(json.dumps(results, indent=1) + "\n")
    log(f"\n{len(modules)} module(s) in {round(time.monotonic() - started)} s")
    report({m: results[m] for m in modules})


if __name__ == "__main__":
    main()
