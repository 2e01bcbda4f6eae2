"""A pytest plugin for a mutation run's scratch copy (``-p s3tc_mutation_plugin``); run.py copies it
there. It fails the run at once when the tests would import s3torchconnector from anywhere but the
mutated copy, and, while mutmut maps each function to the tests that call it, it adds the calls
made in the processes a test started (noted by s3tc_mutation_site) to the test's own."""

import os

import pytest
import s3tc_mutation_site as site


def pytest_configure(config):
    os.environ[site.PYTEST_PID] = str(os.getpid())
    import s3torchconnector

    location = os.path.realpath(s3torchconnector.__file__ or "(a namespace package)")
    if site.ROOT and not location.startswith(os.path.realpath(site.ROOT) + os.sep):
        raise pytest.UsageError(f"mutation run: s3torchconnector imported from {location}, not from {site.ROOT}")
    if os.environ.get("MUTANT_UNDER_TEST") == "stats" and site.HITS:
        site.record_hits_of_children()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    # Before mutmut's own teardown hook files the functions this test called.
    if os.environ.get("MUTANT_UNDER_TEST") == "stats" and site.HITS and os.path.isdir(site.HITS):
        from mutmut.state import state

        for name in os.listdir(site.HITS):
            path = os.path.join(site.HITS, name)
            try:
                with open(path) as hits:
                    state()._stats.update(line.strip() for line in hits if line.strip())
                os.unlink(path)
            except OSError:
                pass
    yield


def pytest_internalerror(excrepr, excinfo):
    # mutmut swallows the output of the pytest it runs: keep the traceback of a crash of pytest itself.
    if site.HITS:
        with open(os.path.join(os.path.dirname(site.HITS), "pytest-internal-error.txt"), "a") as out:
            out.write(f"{excrepr}\n\n")


def pytest_collection_modifyitems(session, config, items):
    # While a mutant is tested, its tests run quickest first (mutmut gives them in no order), so that
    # with -x a killed mutant costs its fastest failing test, not the slowest tests that reach it.
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if not mutant or mutant in ("stats", "fail", "list_all_tests", "mutant_generation"):
        return
    try:
        import json

        with open("mutmut-stats.json") as stats:
            durations = json.load(stats)["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))


def pytest_runtest_logreport(report):
    # A test that fails without a mutant (mutmut's first two runs) stops the whole run, and mutmut
    # shows nothing of it: name it in a file beside the run's log.
    if report.failed and os.environ.get("MUTANT_UNDER_TEST", "") in ("", "stats") and site.HITS:
        with open(os.path.join(os.path.dirname(site.HITS), "pytest-failures.txt"), "a") as out:
            out.write(f"{report.nodeid} ({report.when})\n{report.longreprtext[-4000:]}\n\n")
