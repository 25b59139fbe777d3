"""Frozen dataclasses to JSON values and back, by the fields' declared types.

A trace file holds actions (`tui.session.actions`: the TUI's own and `kv.sim`'s faults and
membership steps) and a `kv.sim.SimConfig`. None of them knows about JSON; this module writes
any of them as plain values and reads them back, going by each dataclass field's type:

* a tuple is written as a list, and a frozenset as a *sorted* list (so that a file does not
  depend on hash order: ``Partition.of({1}, {2, 3})`` is ``{"groups": [[1], [2, 3]]}``);
* an enum as its value, a nested dataclass as an object of its fields;
* on the way back a list becomes what the field says (``tuple[int, int]``,
  ``tuple[frozenset[int], ...]``), and a value of the wrong type is refused.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")


def to_plain(value: Any) -> Any:
    """``value`` as JSON values (dicts, lists, strings, numbers, booleans, None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_plain(getattr(value, field.name)) for field in _fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(to_plain(item) for item in value)
    if isinstance(value, tuple | list):
        return [to_plain(item) for item in value]
    return value


def from_fields(cls: type[T], data: Mapping[str, Any]) -> T:
    """An instance of dataclass ``cls`` from the fields `to_plain` wrote (missing fields take
    their defaults).

    Raises:
        ValueError: an unknown or missing field, or a value of the wrong type.
    """
    hints = get_type_hints(cls)
    names = {field.name for field in _fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field {', '.join(unknown)}")
    values = {key: from_plain(hints[key], value, key) for key, value in data.items()}
    try:
        return cls(**values)
    except TypeError as error:
        raise ValueError(f"bad fields for {cls.__name__}: {error}") from None


def from_plain(hint: Any, value: Any, where: str = "value") -> Any:
    """``value`` (a JSON value) as the type ``hint`` says ``where`` holds.

    Raises:
        ValueError: ``value`` cannot be one.
    """
    origin, args = get_origin(hint), get_args(hint)
    # A tuple too: the values of a `kv.sim.Cluster.describe` line (`tui.session.trace`).
    if origin in (tuple, frozenset) and not isinstance(value, list | tuple):
        raise ValueError(f"{where}: a list, not {value!r}")
    if origin is tuple and args[-1:] == (Ellipsis,):
        return tuple(from_plain(args[0], item, where) for item in value)
    if origin is tuple:
        if len(args) != len(value):
            raise ValueError(f"{where}: {len(args)} items, not {value!r}")
        return tuple(from_plain(a, item, where) for a, item in zip(args, value, strict=True))
    if origin is frozenset:
        return frozenset(from_plain(args[0], item, where) for item in value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: an object, not {value!r}")
        return from_fields(hint, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise ValueError(f"{where}: not a {hint.__name__}: {value!r}") from None
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    # JSON has one kind of number: a float field may read 1 for 1.0; but a bool is no number.
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and isinstance(value, hint):
        if isinstance(value, bool) and hint is not bool:
            raise ValueError(f"{where}: a {hint.__name__}, not {value!r}")
        return value
    raise ValueError(f"{where}: a {getattr(hint, '__name__', hint)}, not {value!r}")


def _fields(obj: Any) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(field for field in dataclasses.fields(obj) if field.init)
