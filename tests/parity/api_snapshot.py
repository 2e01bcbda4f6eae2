"""Describe the public API of s3torchconnector / s3torchconnectorclient as plain JSON data.

One describer for both sides: record_original_api.py runs this file inside a venv holding the
original 1.5.0 to write original_api_1.5.0.json, and tests/unit/test_api_parity.py imports it to
describe our package the same way, so a difference is never an artefact of two describers.

Run as a script: ``python api_snapshot.py OUT.json`` records whatever package is importable.
"""

import ast
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import platform
import re
import sys
import textwrap
import types

# The modules whose public names are a contract, in the order users meet them: a class or
# function exported by several of them is described once, at its "home" (see choose_homes).
MODULES = [
    "s3torchconnector",
    "s3torchconnector._s3client",
    "s3torchconnector._s3client.s3client_config",
    "s3torchconnector.s3reader",
    "s3torchconnector.s3reader.constructor",
    "s3torchconnector.s3reader.protocol",
    "s3torchconnector.s3reader.s3reader",
    "s3torchconnector.s3reader.sequential",
    "s3torchconnector.s3reader.ranged",
    "s3torchconnector.s3reader.dcp_optimized",
    "s3torchconnector.s3writer",
    "s3torchconnector.s3checkpoint",
    "s3torchconnector.s3iterable_dataset",
    "s3torchconnector.s3map_dataset",
    # Private, but where custom get_dataset_objects callables come from:
    # partial(get_objects_from_prefix, uri), S3BucketKeyData for the objects they yield.
    "s3torchconnector._s3dataset_common",
    "s3torchconnector._s3bucket_key_data",
    "s3torchconnector._user_agent",
    "s3torchconnector.dcp",
    "s3torchconnector.dcp.s3_file_system",
    "s3torchconnector.dcp.s3_prefix_strategy",
    "s3torchconnector.lightning",
    "s3torchconnector.lightning.s3_lightning_checkpoint",
    "s3torchconnectorclient",
    "s3torchconnectorclient._mountpoint_s3_client",
]

# Objects defined in these distributions are API; anything else a module imports is incidental.
OWN_PACKAGES = ("s3torchconnector", "s3torchconnectorclient")

# Private members that plugins and test suites patch or call, by the name of the class (or of
# an own base class) that has them.
PRIVATE_MEMBERS = {
    "S3Client": ("_get_object_stream", "_client_builder", "_client"),
    "S3MapDataset": ("_get_object",),
    "S3IterableDataset": ("_get_transformed_object",),
}

# Dunders a class may define that are construction machinery rather than behaviour callers use;
# the constructor's signature is recorded as the class's own signature instead.
CONSTRUCTION_DUNDERS = {
    "__init__",
    "__new__",
    "__init_subclass__",
    "__subclasshook__",
    "__class_getitem__",
}

SIMPLE_TYPES = (int, float, str, bytes, bool, type(None))

PARAMETER_KINDS_WITH_SELF = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")


def import_modules(names):
    """Import every module first, so that submodule attributes are the same whatever the order."""
    modules, errors = {}, {}
    for name in names:
        try:
            modules[name] = importlib.import_module(name)
        except Exception as error:  # any failure to import is a missing module to the caller
            errors[name] = f"{type(error).__name__}: {error}"
    return modules, errors


def is_own_name(qualified_module):
    return (qualified_module or "").split(".")[0] in OWN_PACKAGES


def normalised_repr(value):
    """repr without memory addresses, so that the record is stable across runs."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def describe_parameters(function, drop_first=False):
    """The parameters a caller passes: name, kind, default. None when nothing can be read."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        signature = pybind11_signature(function)
        if signature is None:
            text = getattr(function, "__text_signature__", None)
            return {"text_signature": text} if text else None
    parameters = list(signature.parameters.values())
    if drop_first and parameters and parameters[0].kind.name in PARAMETER_KINDS_WITH_SELF:
        parameters = parameters[1:]
    described = []
    for parameter in parameters:
        entry = {"name": parameter.name, "kind": parameter.kind.name}
        if parameter.default is not inspect.Parameter.empty:
            entry["default"] = normalised_repr(parameter.default)
        described.append(entry)
    return {"parameters": described}


def pybind11_signature(function):
    """pybind11 functions have no signature inspect can read, but their docstring starts with one,
    e.g. ``write(self: m.PutObjectStream, data: object) -> int``. None when there is none."""
    first_line = (getattr(function, "__doc__", None) or "").split("\n", 1)[0]
    match = re.match(r"^\w+\((.*)\)( -> .*)?$", first_line)
    if not match:
        return None
    try:
        tree = ast.parse(f"def f({match.group(1)}): pass")
    except SyntaxError:
        return None
    arguments = tree.body[0].args
    defaults = [None] * (len(arguments.args) - len(arguments.defaults)) + arguments.defaults
    parameters = [
        inspect.Parameter(argument.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=_pybind11_default(default))
        for argument, default in zip(arguments.args, defaults)
    ]
    return inspect.Signature(parameters)


def _pybind11_default(node):
    if node is None:
        return inspect.Parameter.empty
    try:
        return ast.literal_eval(node)
    except ValueError:  # a default pybind11 shows as text, e.g. <Kind.X: 1>
        return ast.unparse(node)


def describe_value(value, with_repr=True):
    """A constant: its type, and its repr when it is a plain value."""
    entry = {"kind": "constant", "type": type(value).__name__}
    if with_repr and isinstance(value, SIMPLE_TYPES):
        entry["repr"] = repr(value)
    return entry


def describe_member(raw):
    """One entry of a class's __dict__, as seen by a caller of the class or its instances."""
    if isinstance(raw, staticmethod):
        return {"kind": "staticmethod", "signature": describe_parameters(raw.__func__)}
    if isinstance(raw, classmethod):
        return {"kind": "classmethod", "signature": describe_parameters(raw.__func__, True)}
    if isinstance(raw, (property, types.GetSetDescriptorType, types.MemberDescriptorType)):
        return {"kind": "property"}
    if type(raw).__name__ == "cached_property":
        return {"kind": "property"}
    if inspect.isclass(raw):
        return {"kind": "class"}
    if inspect.isroutine(raw):
        return {"kind": "method", "signature": describe_parameters(raw, drop_first=True)}
    entry = describe_value(raw)
    entry["kind"] = "attribute"
    return entry


def is_recorded_member(cls, name, raw):
    """Public names, the listed private hooks, and behaviour dunders a class defines itself."""
    if name.startswith("__") and name.endswith("__"):
        return name not in CONSTRUCTION_DUNDERS and (
            inspect.isroutine(raw) or isinstance(raw, (staticmethod, classmethod))
        )
    if not name.startswith("_"):
        return True
    hooks = (PRIVATE_MEMBERS.get(klass.__name__, ()) for klass in cls.__mro__)
    return any(name in names for names in hooks)


def find_member(cls, name):
    """(defining class, raw __dict__ entry) that attribute lookup on the class finds first."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass, vars(klass)[name]
    return None


def assigned_attributes(klass):
    """Names assigned as `self.name = ...` in the source of the class's own methods; empty for a
    class without Python source (a native one)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
    except (OSError, TypeError, SyntaxError):
        return set()
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }


def instance_attributes(cls):
    """Attributes instances get without the class having them: annotated or dataclass fields,
    and `self.name = ...` in the source of the class or a base. A property of 1.5.0 read as an
    attribute is satisfied by these too."""
    names = set()
    for klass in cls.__mro__:
        names.update(getattr(klass, "__annotations__", {}))
        names.update(getattr(klass, "__dataclass_fields__", {}))
        names.update(assigned_attributes(klass))
    return names


def class_members(cls):
    """Members from the class and its own (not third-party) bases; the nearest definition wins.
    Public instance attributes (`self.name = ...` in an own class's methods) are members too:
    users read them (S3Writer.stream, S3Checkpoint.region)."""
    members = {}
    own = [klass for klass in cls.__mro__ if is_own_name(klass.__module__)]
    for klass in own:
        for name, raw in vars(klass).items():
            if name not in members and is_recorded_member(cls, name, raw):
                members[name] = describe_member(raw)
    for klass in own:
        for name in sorted(assigned_attributes(klass)):
            if not name.startswith("_"):
                members.setdefault(name, {"kind": "attribute"})
    return members


def qualified_name(obj):
    return f"{obj.__module__}.{obj.__qualname__}"


def is_protocol(cls):
    return bool(getattr(cls, "_is_protocol", False))


def protocol_attributes(cls):
    """What isinstance() on a runtime-checkable Protocol demands of an object."""
    import typing

    getter = getattr(typing, "_get_protocol_attrs", None)
    return sorted(getter(cls)) if getter else []


def defines_constructor(cls):
    """Whether the class or an own base defines __init__/__new__. Otherwise its signature is a
    third party's or a native placeholder (a pyo3 class without a constructor reads as "()")."""
    own = [klass for klass in cls.__mro__ if is_own_name(klass.__module__)]
    return any("__init__" in vars(klass) or "__new__" in vars(klass) for klass in own)


def describe_class(cls):
    entry = {
        "kind": "class",
        "qualified_name": qualified_name(cls),
        "signature": describe_parameters(cls) if defines_constructor(cls) else None,
        "bases": [qualified_name(base) for base in cls.__bases__],
        "protocol": is_protocol(cls),
        "runtime_checkable": bool(getattr(cls, "_is_runtime_protocol", False)),
        "members": class_members(cls),
    }
    if entry["protocol"]:
        entry["protocol_attributes"] = protocol_attributes(cls)
    return entry


def describe_function(function):
    return {
        "kind": "function",
        "qualified_name": qualified_name(function),
        "signature": describe_parameters(function),
    }


def kind_of(obj):
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if inspect.isroutine(obj):
        return "function"
    return "constant"


def public_names(module):
    """__all__ plus every attribute without a leading underscore."""
    names = set(getattr(module, "__all__", ()))
    names.update(name for name in dir(module) if not name.startswith("_"))
    return sorted(names)


def imported_names(module):
    """{name: module it was imported from} for `from X import name` in the module's source,
    to tell a constant defined here from one imported (e.g. typing.TYPE_CHECKING)."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return {}
    package = module.__name__ if hasattr(module, "__path__") else module.__package__
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            for alias in node.names:
                found[alias.asname or alias.name] = source
    return found


def defined_in(module, name, obj, imports):
    """The module an object comes from: its own __module__, or where the source imported it."""
    if inspect.ismodule(obj):
        return obj.__name__
    if (inspect.isclass(obj) or inspect.isroutine(obj)) and getattr(obj, "__module__", None):
        return obj.__module__
    return imports.get(name, module.__name__)


def describe_name(module, name, imports):
    """A module attribute in brief; classes and functions are detailed once, at their home."""
    obj = getattr(module, name)
    kind = kind_of(obj)
    origin = defined_in(module, name, obj, imports)
    entry = {"kind": kind, "defined_in": origin}
    if kind == "constant" and is_own_name(origin):
        entry.update(describe_value(obj, with_repr=name != "__version__"))
    return entry


def describe_object(obj):
    return describe_class(obj) if inspect.isclass(obj) else describe_function(obj)


def choose_homes(modules):
    """{id(object): "module.name"}: where each own class or function is detailed. Users' import
    path first (a module's __all__), then the module defining it, then its first appearance."""
    places = {}
    for module_name, module in modules.items():
        exported = getattr(module, "__all__", ())
        for name in public_names(module):
            obj = getattr(module, name)
            if kind_of(obj) in ("class", "function") and is_own_name(getattr(obj, "__module__", None)):
                rank = 0 if name in exported else 1 if obj.__module__ == module_name else 2
                places.setdefault(id(obj), []).append((rank, f"{module_name}.{name}"))
    # min() keeps the earliest module of MODULES among equal ranks (sort is stable).
    return {key: min(found, key=lambda place: place[0])[1] for key, found in places.items()}


def snapshot(module_names=MODULES):
    """The whole record: modules with their names, and each own class/function at its home."""
    modules, errors = import_modules(module_names)
    if errors:
        raise SystemExit(f"cannot import: {errors}")
    homes = choose_homes(modules)
    record = {"modules": {}, "objects": {}}
    for module_name, module in modules.items():
        imports = imported_names(module)
        names = {}
        for name in public_names(module):
            entry = describe_name(module, name, imports)
            obj = getattr(module, name)
            if id(obj) in homes:
                entry["home"] = homes[id(obj)]
                if entry["home"] == f"{module_name}.{name}":
                    record["objects"][entry["home"]] = describe_object(obj)
            names[name] = entry
        all_names = getattr(module, "__all__", None)
        record["modules"][module_name] = {
            "all": list(all_names) if all_names is not None else None,
            "names": names,
        }
    return record


def versions():
    """What the record was taken from, for the reader of the JSON."""
    found = {"python": ".".join(platform.python_version_tuple()[:2])}
    for distribution in ("s3torchconnector", "s3torchconnectorclient", "torch"):
        found[distribution] = importlib.metadata.version(distribution)
    return found


def main(out_path):
    record = snapshot()
    record["about"] = (
        "Public API of the original s3torchconnector, written by tests/parity/"
        "record_original_api.py (do not edit by hand); checked by tests/unit/test_api_parity.py."
    )
    record["recorded_from"] = versions()
    with open(out_path, "w") as out:
        json.dump(record, out, indent=1, sort_keys=True)
        out.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
