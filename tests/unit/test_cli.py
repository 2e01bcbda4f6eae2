"""The commands: ``s3torchconnector manifest|pack`` (the console script), ``python -m s3torchconnector``
and the modules' own ``python -m s3torchconnector.manifest`` / ``.shards pack``.

Every option has help text, every command names itself in its usage as it was run, and the console
script, ``python -m s3torchconnector`` and the modules' own commands start without a warning. The
console script exists only once the package is installed again; until then its entry
function is run the way the installed script runs it.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from s3torchconnector import _cli

REPOSITORY = Path(__file__).resolve().parents[2]

# What the installed console script runs (pip writes it from [project.scripts]).
CONSOLE_SCRIPT = ["-c", "import sys; from s3torchconnector._cli import main; sys.exit(main())"]

OPTIONS = {
    "manifest": ["prefix_uri", "manifest_uri", "--region", "--endpoint", "-h, --help"],
    "pack": [
        "source",
        "destination",
        "--shard-size",
        "--max-count",
        "--skip-invalid",
        "--region",
        "--endpoint",
        "-h, --help",
    ],
}


def run(*arguments: str) -> subprocess.CompletedProcess:
    # runpy's RuntimeWarning shows even where PYTHONWARNINGS would hide it (-W comes after it).
    return subprocess.run(
        [sys.executable, "-W", "default::RuntimeWarning", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPOSITORY,
    )


def entries_without_help(text: str):
    """The arguments argparse's help lists without a help text. An entry is a line indented by 2 (4 for
    a subcommand) in an arguments section; its help follows on the same line after two spaces or
    more, or on the next line, indented deeper than a subcommand under it would be (lines indented
    deeper than 4 continue a help text)."""
    lines = text.splitlines()
    missing, in_section = [], False
    for number, line in enumerate(lines):
        if re.fullmatch(r"(positional arguments|options|optional arguments):", line):
            in_section = True
            continue
        if not line.strip():
            in_section = False
        if not in_section or len(line) - len(line.lstrip()) > 4:
            continue
        entry = re.fullmatch(r"( +)(\S+(?: \S+)*?)(?: {2,}(\S.*))?", line)
        if entry is None or entry.group(3):
            continue
        after = lines[number + 1] if number + 1 < len(lines) else ""
        if len(after) - len(after.lstrip()) <= len(entry.group(1)) + 2 or not after.strip():
            missing.append(entry.group(2))
    return missing


def test_the_help_parser_finds_a_missing_help():
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--documented", help="says what it does")
    parser.add_argument("--a-very-long-option-name-indeed", help="help on the next line")
    parser.add_argument("--bare")
    commands = parser.add_subparsers(dest="c", metavar="COMMAND")
    commands.add_parser("sub", help="a subcommand")
    assert entries_without_help(parser.format_help()) == ["COMMAND", "--bare BARE"]


@pytest.mark.parametrize(
    "how",
    [
        pytest.param(["-m", "s3torchconnector"], id="python -m s3torchconnector"),
        pytest.param(CONSOLE_SCRIPT, id="console script"),
    ],
)
@pytest.mark.parametrize("command", ["manifest", "pack"])
def test_each_command_helps_with_every_option_and_starts_without_a_warning(how, command):
    done = run(*how, command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no RuntimeWarning from runpy, nothing else
    assert done.stdout.startswith(f"usage: s3torchconnector {command} ")
    assert entries_without_help(done.stdout) == []
    for option in OPTIONS[command]:
        assert re.search(rf"^ +{re.escape(option)}\b", done.stdout, re.M), option


@pytest.mark.parametrize("how", [["-m", "s3torchconnector"], CONSOLE_SCRIPT], ids=["python -m", "console script"])
def test_the_command_lists_its_subcommands(how):
    done = run(*how, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("usage: s3torchconnector ")
    assert entries_without_help(done.stdout) == []
    assert re.search(r"^ +manifest +\S", done.stdout, re.M) and re.search(r"^ +pack +\S", done.stdout, re.M)


def test_no_command_or_an_unknown_one_is_a_usage_error(capsys):
    for argv in ([], ["unpack"], ["--region", "x", "manifest"]):
        with pytest.raises(SystemExit) as exited:
            _cli.main(argv)
        assert exited.value.code == 2
        assert capsys.readouterr().err.startswith("usage: s3torchconnector ")


def test_the_modules_own_commands_still_work():
    shards = run("-m", "s3torchconnector.shards", "pack", "--help")
    assert shards.returncode == 0 and shards.stderr == "", shards.stderr
    assert shards.stdout.startswith("usage: python -m s3torchconnector.shards pack ")
    assert entries_without_help(shards.stdout) == []
    # The package imports the manifest's implementation (_listing.manifest), not .manifest, so runpy
    # finds .manifest not yet imported when it runs it as __main__: no RuntimeWarning.
    manifest = run("-m", "s3torchconnector.manifest", "--help")
    assert manifest.returncode == 0 and manifest.stderr == "", manifest.stderr
    assert manifest.stdout.startswith("usage: python -m s3torchconnector.manifest ")
    assert entries_without_help(manifest.stdout) == []


def test_version(capsys):
    from s3torchconnector import __version__

    with pytest.raises(SystemExit) as exited:
        _cli.main(["--version"])
    assert (exited.value.code, capsys.readouterr().out) == (0, f"s3torchconnector {__version__}\n")


@pytest.mark.parametrize(
    "argv, module, expected, prog",
    [
        (
            ["manifest", "s3://b/p/", "s3://b/m.jsonl", "--region", "eu-west-1"],
            "manifest",
            None,
            "s3torchconnector manifest",
        ),
        # shards' prog names the program before its subcommand: its pack parser is "s3torchconnector pack".
        (
            ["pack", "s3://b/raw/", "s3://b/shards/", "--shard-size", "1GiB", "--", "x"],
            "shards",
            "pack",
            "s3torchconnector",
        ),
    ],
)
def test_a_command_gets_every_word_after_its_name_and_returns_its_status(monkeypatch, argv, module, expected, prog):
    import importlib

    target = importlib.import_module(f"s3torchconnector.{module}")
    received = []
    monkeypatch.setattr(target, "main", lambda words, prog: received.append((words, prog)) or 7)
    assert _cli.main(argv) == 7
    assert received == [(([expected] if expected else []) + argv[1:], prog)]


@pytest.mark.parametrize("command", ["manifest", "pack"])
def test_a_commands_usage_and_errors_name_it_as_typed(command, capsys):
    """``s3torchconnector manifest`` says so in its usage and errors, not ``python -m s3torchconnector.manifest``."""
    with pytest.raises(SystemExit) as exited:
        _cli.main([command])  # its required arguments missing
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: s3torchconnector {command} ")
    assert f"\ns3torchconnector {command}: error: the following arguments are required" in err


class _Parsed(Exception):
    def __init__(self, parser):
        self.parser = parser


def _parsers_of(main, argv, monkeypatch):
    """The parser ``main`` builds, taken at its parse_args call, and its subcommands' parsers."""

    def capture(parser, args=None, namespace=None):
        raise _Parsed(parser)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(_Parsed) as parsed:
        main(argv)
    monkeypatch.undo()
    found, pending = [], [parsed.value.parser]
    while pending:
        parser = pending.pop()
        found.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())
    return found


@pytest.mark.parametrize("command", ["s3torchconnector", "manifest", "shards"])
def test_every_argument_of_every_parser_has_help(command, monkeypatch):
    from s3torchconnector import manifest, shards

    main = {"s3torchconnector": _cli.main, "manifest": manifest.main, "shards": shards.main}[command]
    without = [
        f"{parser.prog}: {'/'.join(action.option_strings) or action.dest}"
        for parser in _parsers_of(main, ["--help"], monkeypatch)
        for action in parser._actions
        if not action.help and action.help != argparse.SUPPRESS
    ]
    assert without == []


def test_the_console_script_is_the_entry_function():
    text = (REPOSITORY / "pyproject.toml").read_text()
    scripts = re.search(r"^\[project\.scripts\]\n(?:#.*\n)*(.*)$", text, re.M)
    assert scripts and scripts.group(1) == 's3torchconnector = "s3torchconnector._cli:main"'


def test_the_installed_console_script_when_there_is_one():
    script = Path(sys.executable).parent / "s3torchconnector"
    if not script.exists():
        pytest.skip("the package was installed before it had a console script: pip install -e . makes it")
    done = subprocess.run([str(script), "pack", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert entries_without_help(done.stdout) == []
