"""Frozen dataclasses that are cheap to define: the ops and the formula terms.

``@dataclass(frozen=True)`` writes six methods per class as source text and
``exec()``\\ s each (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__``, ``__delattr__``): about 1 ms a class, and the ~60 op and formula
classes are defined by every ``cnnir`` command before it does anything (issue 19).
:func:`record` asks :func:`dataclasses.dataclass` for the three that depend on the
field list (``__init__`` and the frozen ``__setattr__``/``__delattr__``) and takes
equality, hashing and ``repr`` from :class:`Record`, which reads the fields through
one ``operator.attrgetter`` per class.

What a record is and does is a frozen dataclass's: ``dataclasses.fields``,
``replace`` and ``asdict`` work on it, assigning a field raises
``FrozenInstanceError``, a subclass may be a ``@dataclass(frozen=True)`` of its own
(it then brings its own methods), and equality, hash and repr give what the
generated methods give: same class and equal field tuples; ``hash`` of the field
tuple; ``Conv2d(out_channels=64, ...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Any:  # read by type checkers alone
        return lambda f: f


T = TypeVar("T", bound=type)
Values = Callable[[Any], tuple[Any, ...]]


def _no_fields(obj: object) -> tuple[()]:
    return ()


class Record:
    """Equality, hashing and ``repr`` over the dataclass fields, shared by every class
    that :func:`record` makes (not generated per class)."""

    __slots__ = ()
    #: the instance's field values as a tuple, and the field names (set per class by
    #: :func:`record`)
    _record_values: ClassVar[Values] = _no_fields
    _record_names: ClassVar[tuple[str, ...]] = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            values = self.__class__._record_values
            return bool(values(self) == values(other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.__class__._record_values(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._record_names)
        return f"{self.__class__.__qualname__}({args})"


@dataclass_transform(frozen_default=True)
def record(cls: T) -> T:
    """Make ``cls`` (a :class:`Record` subclass) a frozen dataclass whose equality,
    hash and repr are :class:`Record`'s."""
    if not issubclass(cls, Record):
        raise TypeError(f"{cls.__name__}: a record derives from Record")
    made: Any = dataclass(frozen=True, repr=False, eq=False)(cls)
    names = tuple(f.name for f in fields(made))
    getter: Values
    if not names:
        getter = _no_fields
    elif len(names) == 1:
        one = attrgetter(names[0])

        def getter(obj: Any) -> tuple[Any, ...]:
            return (one(obj),)
    else:
        getter = attrgetter(*names)
    # staticmethod: a plain function stored on the class would bind as a method
    made._record_values = staticmethod(getter)
    made._record_names = names
    return cls
