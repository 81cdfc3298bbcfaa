"""The pass registry and pipeline strings.

``"fuse-conv-bn-relu,insert-bottleneck{ratio=4,min_channels=128},check-residual"``
is parsed into pass instances; options are typed by each pass's dataclass fields
(int, float, bool, str, or a tuple of ints written ``kernels=3,5``).  An unknown
pass or option fails with a :class:`~cnnir.errors.PassError` listing the valid ones.

Pass modules register themselves with :func:`register`; :data:`PASS_MODULES`
lists them so the registry is complete without importing anything heavy.
"""

from __future__ import annotations

import importlib
import types
import typing
from dataclasses import fields
from typing import Any

from ..errors import PassError
from .base import Pass

#: modules (under cnnir.passes) that define passes; each registers on import
PASS_MODULES = [
    "infer_shapes",
    "count_params",
    "count_macs",
    "memory",
    "training",
    "receptive_field",
    "fuse",
    "bottleneck",
    "residual",
    "housekeeping",
]

REGISTRY: dict[str, type[Pass]] = {}
_loaded = False


def register(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make a pass available by its ``name``."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"two passes named {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for mod in PASS_MODULES:
            importlib.import_module(f"{__name__}.{mod}")
        _loaded = True


def available() -> dict[str, type[Pass]]:
    """Every registered pass by name, sorted."""
    _load_all()
    return dict(sorted(REGISTRY.items()))


def get_pass(name: str, **options: Any) -> Pass:
    """An instance of the pass ``name`` with typed ``options``."""
    passes = available()
    if name not in passes:
        import difflib

        close = ([n for n in passes if n.startswith(f"{name}-")]
                 or difflib.get_close_matches(name, passes, n=3))
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise PassError(
            f"unknown pass {name!r}; {hint}valid passes: {', '.join(passes)}"
        )
    cls = passes[name]
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in fields(cls) if f.init]
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if key not in valid:
            raise PassError(
                f"pass {name!r} has no option {key!r}"
                + (f"; its options: {', '.join(valid)}" if valid else "; it takes no options")
            )
        kwargs[key] = _convert(name, key, value, hints.get(key, str))
    return cls(**kwargs)


def _convert(pass_name: str, key: str, value: Any, typ: Any) -> Any:
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType) and type(None) in args:  # ``int | None``
        if value.lower() == "none":
            return None
        rest = [a for a in args if a is not type(None)]
        return _convert(pass_name, key, value, rest[0] if len(rest) == 1 else str)
    if origin is typing.Literal:
        if value not in args:
            raise PassError(f"option {key}={value!r} of pass {pass_name!r} must be one of "
                            f"{', '.join(map(str, args))}")
        return value
    try:
        if typ is bool:
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ is int:
            return int(value)
        if typ is float:
            return float(value)
        if origin is tuple:
            (item, *_rest) = typing.get_args(typ) or (str,)
            parts = [p for p in value.replace(";", ",").split(",") if p.strip()]
            return tuple(item(p.strip()) for p in parts)
    except ValueError:
        what = getattr(typ, "__name__", str(typ))
        if origin is tuple:
            item = getattr((args or (str,))[0], "__name__", "value")
            what = f"list of {item}s (such as {'3,5' if item == 'int' else 'a,b'})"
        raise PassError(
            f"option {key}={value!r} of pass {pass_name!r} is not a valid {what}"
        ) from None
    return value


def parse_pipeline(text: str) -> list[Pass]:
    """Parse ``"a,b{k=v,k2=1,2}"`` into pass instances (see module docstring)."""
    passes: list[Pass] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in ", \t":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and text[j] not in ",{":
            j += 1
        name = text[i:j].strip()
        options: dict[str, Any] = {}
        if j < n and text[j] == "{":
            close = text.find("}", j)
            if close < 0:
                raise PassError(f"pipeline {text!r}: '{{' after {name!r} is never closed")
            options = _parse_options(name, text[j + 1:close])
            j = close + 1
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] != ",":
                raise PassError(f"pipeline {text!r}: expected ',' after the options of "
                                f"{name!r}, got {text[j:]!r}")
        if not name:
            raise PassError(f"pipeline {text!r}: empty pass name at position {i}")
        passes.append(get_pass(name, **options))
        i = j
    if not passes:
        raise PassError(f"pipeline {text!r} names no pass")
    return passes


def _parse_options(name: str, body: str) -> dict[str, str]:
    options: dict[str, str] = {}
    last: str | None = None
    for token in body.split(","):
        token = token.strip()
        if not token:
            continue
        if "=" in token:
            key, value = token.split("=", 1)
            last = key.strip()
            if last in options:
                raise PassError(f"pass {name!r}: option {last!r} is given twice")
            options[last] = value.strip()
        elif last is not None:  # "kernels=3,5": a bare token continues a list
            options[last] += "," + token
        else:
            raise PassError(f"pass {name!r}: option {token!r} needs the form key=value")
    return options


__all__ = ["Pass", "register", "available", "get_pass", "parse_pipeline", "PASS_MODULES"]
