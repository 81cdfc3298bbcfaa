"""Indented JSON text, as :func:`json.dumps` writes it, in half the time.

The JSON formats of ``report`` (and the other commands) are ``json.dumps(obj,
indent=2)``; with an indent, :mod:`json` runs its pure-Python encoder (the C encoder
writes compact text only), and a report of a 500-layer model spent most of its
rendering there (issue 19).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any


def _json_float(x: float) -> str:
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    return float.__repr__(x)


_JSON_SCALARS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii,
    int: int.__repr__,
    float: _json_float,
    bool: lambda v: "true" if v else "false",
    type(None): lambda v: "null",
}


class _NotPlain(Exception):
    """A value the fast path leaves to :func:`json.dumps` (a subclass, a non-str key)."""


def _json_into(v: Any, nl: str, step: str, out: list[str]) -> None:
    t = type(v)
    scalar = _JSON_SCALARS.get(t)
    if scalar is not None:
        out.append(scalar(v))
        return
    if t is not list and t is not tuple and t is not dict:
        raise _NotPlain
    if not v:
        out.append("{}" if t is dict else "[]")
        return
    inner = nl + step
    sep = "," + inner
    if t is dict:
        out.append("{" + inner)
        first = True
        for k, x in v.items():
            if type(k) is not str:
                raise _NotPlain
            head = encode_basestring_ascii(k) + ": "
            if first:
                first = False
            else:
                head = sep + head
            scalar = _JSON_SCALARS.get(type(x))
            if scalar is not None:
                out.append(head + scalar(x))
            else:
                out.append(head)
                _json_into(x, inner, step, out)
        out.append(nl + "}")
    elif all(type(x) is int for x in v):  # a shape, a size: the common list
        out.append("[" + inner + sep.join(map(int.__repr__, v)) + nl + "]")
    else:
        out.append("[" + inner)
        for i, x in enumerate(v):
            if i:
                out.append(sep)
            _json_into(x, inner, step, out)
        out.append(nl + "]")


def json_text(obj: Any, indent: int = 2) -> str:
    """``json.dumps(obj, indent=indent)``: the same text, about twice as fast.

    It writes dicts, lists, tuples, strings, ints, floats, bools
    and None of those exact types itself and hands anything else (a subclass, a
    non-string key, a cycle) to :func:`json.dumps`, so the text and the errors are
    always its."""
    out: list[str] = []
    try:
        _json_into(obj, "\n", " " * indent, out)
    except (_NotPlain, RecursionError):
        return json.dumps(obj, indent=indent)
    return "".join(out)
