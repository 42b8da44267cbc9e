"""Form fields from ``_target_`` signatures and docstrings, and the type checks of edited values."""

import inspect
import re
import types
import typing
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

#: keys Hydra gives a meaning to; never editable from the page
RESERVED_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
_PLAIN_INTERPOLATION = re.compile(r"^\$\{[A-Za-z_][\w.]*\}$")
_NUMBER_KINDS = {"int": int, "float": float}


@lru_cache(maxsize=512)
def signature_of(target: str) -> tuple[dict[str, tuple[Any, Any]], bool] | None:
    """Parameters ``name -> (annotation, default)`` of a ``_target_`` and whether it takes ``**kwargs``.

    Returns ``None`` when the target cannot be imported or has no introspectable signature.
    """
    from hydra.utils import get_object

    try:
        obj = get_object(target)
        sig = inspect.signature(obj)
    except Exception:  # not importable or a builtin without a signature: forms fall back to the YAML
        return None
    try:
        hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
    except Exception:  # unresolvable forward references: the raw annotations are used
        hints = {}
    params, var_kw = {}, False
    for name, param in sig.parameters.items():
        if param.kind is param.VAR_KEYWORD:
            var_kw = True
        elif param.kind is not param.VAR_POSITIONAL:
            default = None if param.default is inspect.Parameter.empty else param.default
            params[name] = (hints.get(name, param.annotation), default)
    return params, var_kw


@lru_cache(maxsize=512)
def param_docs(target: str) -> dict[str, str]:
    """One line of help per parameter, from the Google-style ``Args:`` sections of the docstrings."""
    from hydra.utils import get_object

    try:
        obj = get_object(target)
    except Exception:  # help text is optional
        return {}
    texts = [inspect.getdoc(obj) or ""]
    if inspect.isclass(obj):
        texts.append(inspect.getdoc(obj.__init__) or "")
    docs: dict[str, str] = {}
    for text in texts:
        match = re.search(r"^(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?|\s*\n)+)", text, re.M)
        if not match:
            continue
        for name, doc in re.findall(
            r"^[ \t]{2,8}\*{0,2}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", match.group(1), re.M
        ):
            docs.setdefault(name, doc.strip())
    return docs


def describe(annotation: Any, default: Any) -> dict[str, Any]:
    """The form widget of a value: ``kind`` (enum, bool, int, float, str, list, json), options, nullable."""
    kind, options, nullable = _kind(annotation)
    if kind == "json" and default is not None:
        kind = _kind_of_value(default)
    if default is None:
        nullable = True
    out: dict[str, Any] = {"kind": kind, "nullable": nullable}
    if options:
        out["options"] = options
    return out


def _kind(annotation: Any) -> tuple[str, list[Any], bool]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        return "bool", [], False
    if annotation in (int, float, str):
        return annotation.__name__, [], False
    if origin is typing.Literal:
        return "enum", list(args), False
    if origin in (typing.Union, types.UnionType):
        nullable = type(None) in args
        parts = [_kind(a) for a in args if a is not type(None)]
        literals = [o for k, opts, _ in parts if k == "enum" for o in opts]
        if parts and all(k == "enum" for k, _, _ in parts):
            return "enum", literals, nullable
        kinds = {k for k, _, _ in parts}
        if len(kinds) == 1:
            return kinds.pop(), [], nullable
        if kinds <= {"int", "float"}:
            return "float", [], nullable
        return "json", [], nullable
    if origin is not None and isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str:
        return "list", [], False
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return "json", [], False
    return "json", [], False


def _kind_of_value(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list | tuple):
        return "list"
    return "json"


def check_value(field: dict[str, Any], value: Any, default: Any) -> str | None:
    """Why ``value`` does not fit ``field`` (a :func:`describe` result), or ``None`` when it does."""
    if value == default:
        return None
    if isinstance(value, str) and "${" in value:
        if _PLAIN_INTERPOLATION.match(value):
            return None
        return f"only plain references such as ${{net.in_channels}} may be typed here, got {value!r}"
    if _has_reserved(value):
        return f"{'/'.join(RESERVED_KEYS)} cannot be set from the builder; choose a component instead"
    if value is None:
        return None if field.get("nullable") else "a value is required"
    kind = field["kind"]
    if kind == "enum":
        options = field.get("options", [])
        return None if value in options else f"choose one of {options}, got {value!r}"
    if kind == "bool" and not isinstance(value, bool):
        return f"must be true or false, got {value!r}"
    if kind in _NUMBER_KINDS:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or (kind == "int" and isinstance(value, float) and not value.is_integer()):
            return f"must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}"
    if kind == "str" and not isinstance(value, str):
        return f"must be text, got {value!r}"
    if kind == "list" and not isinstance(value, list):
        return f"must be a list such as [1, 2], got {value!r}"
    return None


def _has_reserved(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k in RESERVED_KEYS or _has_reserved(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_reserved(v) for v in value)
    return False


def coerce(field: dict[str, Any], value: Any) -> Any:
    """Whole floats into integers for integer fields (what a number input sends)."""
    if field.get("kind") == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
