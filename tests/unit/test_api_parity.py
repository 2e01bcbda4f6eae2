"""Our package against the recorded public API of the original s3torchconnector 1.5.0.

The record (tests/parity/original_api_1.5.0.json) is written by tests/parity/record_original_api.py;
both sides are described by the same code (tests/parity/api_snapshot.py). Each module of the
record is one test, which lists every problem it finds. What counts as breaking a 1.5.0 caller:

- Names: a module that does not import; a recorded name that is missing. A name counts where the
  module defines it, lists it in __all__, or is a package re-exporting one of the original's own
  names. Names a plain module merely imported (from typing, torch, or another module of the
  package, where they are checked) and module loggers (reached through logging.getLogger) do not.
- Kinds: a class must stay a class (isinstance and subclassing rely on it); a function may become
  a class or another callable that accepts the same calls; a module stays a module. A class or function
  recorded at several import paths must be the same object at all of them, as it was in 1.5.0.
- Signatures (constructors, functions, methods, from the caller's side, without self):
  each parameter accepted positionally is accepted at the same position under the same name
  (any name for positional-only ones), or ours has *args there; each parameter accepted by
  keyword is accepted by that name, or ours has **kwargs; ours requires nothing 1.5.0 did not;
  a parameter with a default keeps one, with the same repr. A native default shown as "..." in
  1.5.0 has an unknown value: only its presence is checked. Dunder methods are called
  positionally by Python, so only positions are checked for them, and one defined in 1.5.0 must
  not fall back to object's default; pickling dunders (__getnewargs__, __reduce__, ...) are
  not compared, since pickle works through any of them. A signature 1.5.0 did not expose is
  not checked.
- Members: methods stay callable on instances; staticmethods and classmethods stay callable on
  the class; properties, class attributes and instance attributes (annotated, dataclass fields,
  or assigned to `self.` in the class's source) are interchangeable: all read as attributes.
- Constants: same type for plain values, same repr unless a string (messages may differ).
- Classes: every base the original had (resolved in our package when it is itself recorded,
  otherwise in its third-party module) is still a base; a runtime-checkable Protocol stays one
  and demands no attribute the original did not; __all__ keeps every original entry.

A problem is forgiven only when its key, or a dotted prefix of it, is in DELIBERATE_DIFFERENCES,
and README.md's "## Differences from the original" must mention every such key. Keys are the
import path where the record details an object (its "home"), then member and parameter:
"s3torchconnector.S3Writer.__exit__", "s3torchconnector._s3client.S3Client.get_object.bucket".
"""

import functools
import importlib
import json
from pathlib import Path

import pytest
from parity import api_snapshot as snapshot

# Deliberate, documented departures from 1.5.0, where its behaviour is clearly unsafe.
DELIBERATE_DIFFERENCES = {
    "s3torchconnector.s3reader.dcp_optimized.FIND_ITEM_ERROR_PREFIX": (
        "the prefix of the original's error for reads outside the planned ranges or out of order; "
        "our DCP reader serves any access pattern, so that error does not exist"
    ),
}

REPOSITORY = Path(__file__).resolve().parents[2]
RECORD = json.loads((REPOSITORY / "tests" / "parity" / "original_api_1.5.0.json").read_text())

# Bases that carry no behaviour a caller relies on (Protocol-ness is checked on its own).
IGNORED_BASES = {"builtins.object", "typing.Protocol", "typing.Generic", "abc.ABC"}

POSITIONAL = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")
BY_KEYWORD = ("POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY")
UNKNOWN_NATIVE_DEFAULT = "Ellipsis"

# How instances pickle is not API: pickle picks whichever of these a class has, and e.g. a class
# with __slots__ pickles with none of them. Whether instances pickle is for behaviour tests.
PICKLING_DUNDERS = {
    "__getnewargs__",
    "__getnewargs_ex__",
    "__reduce__",
    "__reduce_ex__",
    "__getstate__",
    "__setstate__",
}

# Which kinds of ours can stand in for a recorded kind, module names and class members alike.
COMPATIBLE_KINDS = {
    "module": {"module"},
    "class": {"class"},
    "function": {"function", "class"},
    "constant": {"constant"},
    "method": {"method", "staticmethod", "classmethod"},
    "staticmethod": {"staticmethod", "classmethod"},
    "classmethod": {"staticmethod", "classmethod"},
    "property": {"property", "attribute"},
    "attribute": {"property", "attribute"},
}


@functools.cache
def our_modules():
    """All recorded modules imported up front, as the recorder did, so submodule attributes match."""
    return snapshot.import_modules(list(RECORD["modules"]))


def resolve_ours(path):
    """Our object at a recorded "module.name" path, or None."""
    module_name, name = path.rsplit(".", 1)
    module = our_modules()[0].get(module_name)
    return getattr(module, name, None)


def resolve_external(qualified_name):
    """A third-party class by its qualified name (e.g. io.BufferedIOBase), or None."""
    parts = qualified_name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            return functools.reduce(getattr, parts[split:], obj)
        except AttributeError:
            return None
    return None


@functools.cache
def homes_by_qualified_name():
    """{qualified name in 1.5.0: home path}, to find our counterpart of a recorded base class."""
    return {entry["qualified_name"]: home for home, entry in RECORD["objects"].items()}


def is_deliberate(key):
    parts = key.split(".")
    return any(".".join(parts[:end]) in DELIBERATE_DIFFERENCES for end in range(1, len(parts) + 1))


def render(parameters):
    """A parameter list as Python would print it, for messages."""
    shown, keyword_only_started = [], False
    for parameter in parameters:
        kind, text = parameter["kind"], parameter["name"]
        if kind == "VAR_POSITIONAL":
            text, keyword_only_started = "*" + text, True
        elif kind == "VAR_KEYWORD":
            text = "**" + text
        elif kind == "KEYWORD_ONLY" and not keyword_only_started:
            shown.append("*")
            keyword_only_started = True
        if "default" in parameter:
            text += "=" + parameter["default"]
        shown.append(text)
    return "(" + ", ".join(shown) + ")"


def positional(parameters):
    return [parameter for parameter in parameters if parameter["kind"] in POSITIONAL]


def has_kind(parameters, kind):
    return any(parameter["kind"] == kind for parameter in parameters)


def by_name(parameters, name):
    """The named (not *args/**kwargs) parameter called name, or None."""
    named = (p for p in parameters if not p["kind"].startswith("VAR_"))
    return next((p for p in named if p["name"] == name), None)


def is_required(parameter):
    return "default" not in parameter and not parameter["kind"].startswith("VAR_")


def position_problems(original, ours, names_matter=True):
    """Each parameter 1.5.0 took positionally still lands at the same position, as itself.
    Yields (parameter name, message), as do the other *_problems of a signature."""
    ours_positional = positional(ours)
    for index, parameter in enumerate(positional(original)):
        name = parameter["name"]
        if index >= len(ours_positional):
            if not has_kind(ours, "VAR_POSITIONAL"):
                yield name, f"no longer accepts `{name}` as positional argument {index + 1}"
        elif names_matter and parameter["kind"] == "POSITIONAL_OR_KEYWORD":
            if ours_positional[index]["name"] != name:
                found = ours_positional[index]["name"]
                yield name, f"positional argument {index + 1} is `{found}`, was `{name}`"


def keyword_problems(original, ours):
    """Each parameter 1.5.0 took by keyword is still accepted by that name."""
    if has_kind(ours, "VAR_KEYWORD"):
        return
    for parameter in original:
        if parameter["kind"] in BY_KEYWORD:
            counterpart = by_name(ours, parameter["name"])
            if counterpart is None or counterpart["kind"] not in BY_KEYWORD:
                yield parameter["name"], f"no longer accepts `{parameter['name']}=` by keyword"


def required_problems(original, ours):
    """Ours requires nothing that a 1.5.0 caller could leave out."""
    original_positional = positional(original)
    for index, parameter in enumerate(ours):
        if not is_required(parameter):
            continue
        counterpart = by_name(original, parameter["name"])
        if counterpart is not None and is_required(counterpart):
            continue
        if parameter["kind"] in POSITIONAL and index < len(original_positional):
            if is_required(original_positional[index]):
                continue  # a renamed positional: position_problems tells
        if counterpart is None:
            yield parameter["name"], f"requires `{parameter['name']}`, which 1.5.0 did not have"
        else:
            default = counterpart.get("default")
            yield (
                parameter["name"],
                f"requires `{parameter['name']}`, optional in 1.5.0 ({default})",
            )


def counterpart_of(parameter, original, ours):
    """Our parameter that receives what a caller passed for this 1.5.0 parameter."""
    if parameter["kind"] != "POSITIONAL_ONLY":
        return by_name(ours, parameter["name"])
    index = positional(original).index(parameter)
    ours_positional = positional(ours)
    return ours_positional[index] if index < len(ours_positional) else None


def default_problems(original, ours):
    """A default 1.5.0 had keeps its value (a lost default is a required_problems case)."""
    for parameter in original:
        name, default = parameter["name"], parameter.get("default", UNKNOWN_NATIVE_DEFAULT)
        counterpart = counterpart_of(parameter, original, ours)
        if default == UNKNOWN_NATIVE_DEFAULT or counterpart is None or "default" not in counterpart:
            continue
        if counterpart["default"] != default:
            yield name, f"default of `{name}` is {counterpart['default']}, was {default}"


def signature_problems(path, original, ours, dunder=False):
    """Everything about a call signature that would break a caller of 1.5.0. Dunders are called
    positionally by Python, so for them only positions count, not names or keywords."""
    if not original or "parameters" not in original:
        return []
    if not ours or "parameters" not in ours:
        shown = render(original["parameters"])
        return [(path, f"our signature cannot be read by inspect (1.5.0's could: {shown})")]
    original, ours = original["parameters"], ours["parameters"]
    found = list(position_problems(original, ours, names_matter=not dunder))
    found += required_problems(original, ours)
    if not dunder:
        found += keyword_problems(original, ours)
        found += default_problems(original, ours)
    versus = f"\n    ours {render(ours)}, 1.5.0 {render(original)}"
    return [(f"{path}.{name}", message + versus) for name, message in found]


def value_problems(path, recorded, value):
    """A plain constant keeps its type, and its value unless it is a string (messages may differ)."""
    ours = snapshot.describe_value(value)
    simple = {kind.__name__ for kind in snapshot.SIMPLE_TYPES}
    if recorded.get("type") in simple and ours["type"] != recorded["type"]:
        return [(path, f"is a {ours['type']}, was a {recorded['type']}")]
    if "repr" in recorded and recorded["type"] != "str" and ours.get("repr") != recorded["repr"]:
        return [(path, f"is {ours.get('repr')}, was {recorded['repr']}")]
    return []


def member_problems(path, name, recorded, cls):
    """One recorded method, property or attribute of a class."""
    if name in PICKLING_DUNDERS:
        return []
    found = snapshot.find_member(cls, name)
    if found is None and recorded["kind"] in ("property", "attribute"):
        if name in snapshot.instance_attributes(cls):
            return []
    if found is None:
        return [(path, f"missing (1.5.0 had a {recorded['kind']})")]
    owner, raw = found
    ours = snapshot.describe_member(raw)
    if ours["kind"] not in COMPATIBLE_KINDS[recorded["kind"]]:
        return [(path, f"is a {ours['kind']}, was a {recorded['kind']}")]
    dunder = name.startswith("__") and name.endswith("__")
    if dunder and owner is object:
        return [(path, "falls back to object's default; 1.5.0 defined its own")]
    if recorded["kind"] == "attribute" and ours["kind"] == "attribute":
        return value_problems(path, recorded, raw)
    return signature_problems(path, recorded.get("signature"), ours.get("signature"), dunder)


def base_class(qualified_name):
    """Our counterpart of a base class of 1.5.0: ours if the base is recorded, else third-party."""
    home = homes_by_qualified_name().get(qualified_name)
    return resolve_ours(home) if home else resolve_external(qualified_name)


def base_problems(path, recorded, cls):
    problems = []
    for qualified_name in recorded["bases"]:
        if qualified_name in IGNORED_BASES:
            continue
        base = base_class(qualified_name)
        if isinstance(base, type) and not issubclass(cls, base):
            shown = homes_by_qualified_name().get(qualified_name, qualified_name)
            problems.append((path, f"does not derive from {shown}"))
    return problems


def protocol_problems(path, recorded, cls):
    """A Protocol stays one, stays runtime-checkable, and isinstance() demands nothing new."""
    if not recorded["protocol"]:
        return []
    if not snapshot.is_protocol(cls):
        return [(path, "is no longer a typing.Protocol")]
    problems = []
    if recorded["runtime_checkable"] and not getattr(cls, "_is_runtime_protocol", False):
        problems.append((path, "is no longer @runtime_checkable"))
    extra = sorted(set(snapshot.protocol_attributes(cls)) - set(recorded["protocol_attributes"]))
    if extra:
        problems.append((path, f"isinstance() now also demands {extra}"))
    return problems


def class_problems(path, recorded, cls):
    problems = signature_problems(path, recorded["signature"], snapshot.describe_parameters(cls))
    problems += base_problems(path, recorded, cls)
    problems += protocol_problems(path, recorded, cls)
    for name, member in sorted(recorded["members"].items()):
        problems += member_problems(f"{path}.{name}", name, member, cls)
    return problems


def object_problems(path, obj):
    """The full comparison of a class or function, made once, at its home path."""
    recorded = RECORD["objects"][path]
    if recorded["kind"] == "class":
        return class_problems(path, recorded, obj)
    return signature_problems(path, recorded["signature"], snapshot.describe_parameters(obj))


def is_contract(module_name, module, name, entry, all_names):
    """Names a module defines itself, lists in __all__, or (a package) re-exports on purpose.

    Not incidental imports: a plain module that imported a name from elsewhere in the package does
    not offer it (it is checked at its own home), nor from a third party; nor a module's logger,
    which callers reach through logging.getLogger(module name)."""
    if name in (all_names or ()):
        return True
    if entry.get("type") == "Logger":
        return False
    if entry["defined_in"] == module_name:
        return True
    return hasattr(module, "__path__") and snapshot.is_own_name(entry["defined_in"])


def name_problems(path, entry, module):
    name = path.rsplit(".", 1)[1]
    if not hasattr(module, name):
        return [(path, f"missing (1.5.0 had a {entry['kind']} from {entry['defined_in']})")]
    obj = getattr(module, name)
    kind = snapshot.kind_of(obj)
    if entry["kind"] == "function" and callable(obj):
        kind = "function"  # a partial or other callable object calls the same way
    if kind not in COMPATIBLE_KINDS[entry["kind"]]:
        return [(path, f"is a {kind}, was a {entry['kind']}")]
    if entry["kind"] == "constant":
        return value_problems(path, entry, obj)
    home = entry.get("home")
    if home == path:
        return object_problems(path, obj)
    home_object = resolve_ours(home) if home else None
    if home_object is not None and obj is not home_object:
        return [(path, f"is not the same object as {home} (it was in 1.5.0)")]
    return []


def all_problems(module_name, recorded_all, module):
    if recorded_all is None:
        return []
    ours = getattr(module, "__all__", None)
    if ours is None:
        return [(f"{module_name}.__all__", f"missing; 1.5.0 had {recorded_all}")]
    missing = [name for name in recorded_all if name not in ours]
    return [(f"{module_name}.__all__", f"lacks {missing}")] if missing else []


def module_problems(module_name):
    modules, errors = our_modules()
    if module_name in errors:
        return [(module_name, f"cannot be imported: {errors[module_name]}")]
    module = modules[module_name]
    recorded = RECORD["modules"][module_name]
    problems = all_problems(module_name, recorded["all"], module)
    for name, entry in sorted(recorded["names"].items()):
        if is_contract(module_name, module, name, entry, recorded["all"]):
            problems += name_problems(f"{module_name}.{name}", entry, module)
    return problems


@pytest.mark.parametrize("module_name", list(RECORD["modules"]))
def test_module_matches_original(module_name):
    problems = [(key, message) for key, message in module_problems(module_name) if not is_deliberate(key)]
    if problems:
        listed = "\n".join(f"- {key}: {message}" for key, message in problems)
        pytest.fail(f"{len(problems)} differences from 1.5.0:\n{listed}", pytrace=False)


def readme_section(heading):
    """The text under a README heading, up to the next heading of the same level, or None."""
    text = (REPOSITORY / "README.md").read_text()
    if heading not in text:
        return None
    after = text.split(heading, 1)[1]
    return after.split("\n## ", 1)[0]


def test_deliberate_differences_are_documented():
    """Users must be told where we deliberately behave differently from 1.5.0."""
    section = readme_section("## Differences from the original")
    assert section is not None, 'README.md has no "## Differences from the original" section'
    undocumented = [key for key in DELIBERATE_DIFFERENCES if key not in section]
    assert not undocumented, f"not mentioned in README's differences section: {undocumented}"
