"""The API reference has something to say about every public name (docs/build renders it with pdoc).

Public: what the documented modules export (``__all__``, and the package's own classes and functions
a package re-exports beside it; for a plain module, the classes and functions it defines), and the
public methods and properties of those classes. Each needs a docstring of its own, except that a
method overriding one of the package's own documented methods may share that one's (pdoc shows it).
An override of a method of io, torch or Lightning needs its own: theirs does not describe ours. A
constructor has none of its own unless it overrides a documented third-party one (pdoc would show
that one's arguments); the class docstring describes its arguments.
"""

import importlib
import inspect
import re
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]

MODULES = [
    "s3torchconnector",
    "s3torchconnector.s3reader",
    "s3torchconnector.dcp",
    "s3torchconnector.lightning",
    "s3torchconnector.manifest",
    "s3torchconnector.shards",
]


def _ours(obj) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "s3torchconnector"


def _public_names(module):
    """(name, object) of the classes and functions the module exports."""
    names = list(getattr(module, "__all__", ()))
    is_package = hasattr(module, "__path__")
    for name, value in vars(module).items():
        if name.startswith("_") or name in names or not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        if (is_package and _ours(value)) or getattr(value, "__module__", None) == module.__name__:
            names.append(name)
    found = [(name, getattr(module, name)) for name in names]
    return [(name, value) for name, value in found if inspect.isclass(value) or callable(value)]


def _text(doc) -> str:
    return doc.strip() if isinstance(doc, str) else ""


def _function_of(member):
    """The function (or property) behind a class attribute, or None for data."""
    if isinstance(member, (classmethod, staticmethod)):
        member = member.__func__
    if isinstance(member, property) or inspect.isfunction(member):
        return member
    return None


def _docstring(member) -> str:
    function = _function_of(member)
    return _text(function.fget.__doc__ if isinstance(function, property) else function.__doc__)


def _class_docstring(cls) -> str:
    text = _text(vars(cls).get("__doc__"))
    # NamedTuple and dataclass make one from the fields ("PackResult(shards, samples, skipped)"): not a docstring.
    return "" if text.startswith(f"{cls.__name__}(") else text


def _members_without_docstring(cls):
    missing = []
    for name in sorted(dir(cls)):
        if name.startswith("_") and name != "__init__":
            continue
        owners = [base for base in cls.__mro__ if name in vars(base) and _function_of(vars(base)[name]) is not None]
        if not owners or not _ours(owners[0]):
            continue  # data, or a member io, torch or Lightning defines and we do not override
        ours_documented = any(_docstring(vars(base)[name]) for base in owners if _ours(base))
        if name == "__init__":
            # pdoc shows an inherited constructor docstring; object's says nothing and is not shown.
            theirs = [base for base in owners if not _ours(base) and base is not object]
            if theirs and _docstring(vars(theirs[0])[name]) and not ours_documented:
                missing.append(f"{cls.__name__}.__init__ (pdoc would show {theirs[0].__qualname__}'s)")
            continue
        if not ours_documented:
            missing.append(f"{cls.__name__}.{name}")
    return missing


def _public_objects():
    """Every documented module, public class and function once, with the public classes."""
    seen = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        seen.setdefault(id(module), (module_name, module))
        for name, value in _public_names(module):
            seen.setdefault(id(value), (f"{module_name}.{name}", value))
    return list(seen.values())


def test_every_public_name_has_a_docstring():
    missing = []
    for name, obj in _public_objects():
        if inspect.isclass(obj):
            if not _class_docstring(obj):
                missing.append(name)
        elif not _text(getattr(obj, "__doc__", None)):
            missing.append(name)
    assert missing == [], f"public names without a docstring: {missing}"


def test_every_public_method_and_property_has_a_docstring():
    missing = []
    for _, obj in _public_objects():
        if inspect.isclass(obj):
            missing.extend(_members_without_docstring(obj))
    assert missing == [], f"public methods and properties without a docstring: {sorted(set(missing))}"


def _all_docstrings():
    for name, obj in _public_objects():
        yield name, _class_docstring(obj) if inspect.isclass(obj) else _text(obj.__doc__)
        if inspect.isclass(obj):
            for member_name, member in vars(obj).items():
                if _function_of(member) is not None and _docstring(member):
                    yield f"{name}.{member_name}", _docstring(member)


def test_no_inline_literal_is_split_across_lines():
    """pdoc turns ``x`` into code only within a line: a literal that wraps shows its backquotes and
    garbles the text after it."""
    split = [
        f"{name}: {line.strip()}"
        for name, doc in _all_docstrings()
        for line in doc.splitlines()
        if line.count("``") % 2
    ]
    assert split == [], "inline literals that wrap to the next line:\n" + "\n".join(split)


def test_the_rules_see_what_they_are_meant_to():
    """The checks above find undocumented members, including overrides and NamedTuple fields."""
    import io
    from typing import NamedTuple

    class Fields(NamedTuple):
        a: int

    class Reader(io.BufferedIOBase):
        """A reader."""

        def read(self, size=-1):
            return b""

        def helper(self):
            pass

        @property
        def name(self):
            return ""

    class Child(Reader):
        def helper(self):
            """Documented here."""

    for cls in (Fields, Reader, Child):
        cls.__module__ = "s3torchconnector.example"
    assert _class_docstring(Fields) == ""
    assert _members_without_docstring(Reader) == ["Reader.helper", "Reader.name", "Reader.read"]
    assert _members_without_docstring(Child) == ["Child.name", "Child.read"]


def test_docs_build_renders_every_module_checked_here():
    script = (REPOSITORY / "docs" / "build").read_text()
    listed = re.search(r"^modules=\((.*?)\)", script, re.S | re.M)
    assert listed, "docs/build lists its modules as modules=( ... )"
    assert sorted(listed.group(1).split()) == sorted(MODULES)


def test_the_docs_extra_pins_the_pdoc_docs_build_installs():
    pins = re.findall(r"^pdoc==[\w.]+$", (REPOSITORY / "docs" / "requirements.txt").read_text(), re.M)
    assert len(pins) == 1, "docs/requirements.txt pins pdoc once"
    extra = re.search(r"^docs = \[(.*)\]$", (REPOSITORY / "pyproject.toml").read_text(), re.M)
    assert extra and extra.group(1) == f'"{pins[0]}"', "pyproject's docs extra names docs/requirements.txt's pin"
