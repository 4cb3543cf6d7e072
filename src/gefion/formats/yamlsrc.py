"""YAML that remembers where everything came from.

:func:`load_yaml` parses YAML text into plain Python data — :class:`YamlMap` and
:class:`YamlList` are ``dict`` and ``list`` subclasses that also keep the 1-based line of
every mapping key and sequence item — and hands back the document as a :class:`Value`: the
data plus its source, line and field path. :class:`Fields` reads one mapping with a closed
set of keys. Every complaint is an :class:`~gefion.core.errors.InputError` (or the subclass
the caller chose) whose ``str()`` reads ``jobs.yaml:14: field 'pending[2].gpus': must be a
whole number >= 0, got -4``. Sequence indices in field paths count from 0.

Scalars follow the YAML 1.2 core schema rather than PyYAML's YAML 1.1 defaults, because the
1.1 rules surprise people who write job files: ``id: 010`` would be the octal number 8,
``now: 1e9`` a string and ``time: 1:30`` the number 90. Here integers are decimal, floats
may use an exponent without a dot, and ``1:30`` stays a string. Duplicate keys are an error
(PyYAML silently keeps the last); ``<<`` merge keys work, explicit keys win over merged ones.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from gefion.core.errors import InputError

T = TypeVar("T")

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT = re.compile(r"^[-+]?[0-9][0-9_]*$")
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?
                        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                        |[-+]?\.(?:inf|Inf|INF)
                        |\.(?:nan|NaN|NAN))$""", re.X)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema numbers (see the module docstring)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    try:  # decimal, also with leading zeros; an explicit !!int may use 0x/0o/0b prefixes
        return int(text, 10)
    except ValueError:
        pass
    try:
        return int(text, 0)
    except ValueError:
        raise ConstructorError(None, None, f"{text!r} is not a whole number",
                               node.start_mark) from None


_Loader.add_constructor(_INT_TAG, _construct_int)


class YamlMap(dict[str, Any]):
    """A YAML mapping: a plain ``dict`` that also knows its own line and each key's line."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}


class YamlList(list[Any]):
    """A YAML sequence: a plain ``list`` that also knows its own line and each item's line."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


def load_yaml(text: str, source: str, *,
              error_type: type[InputError] = InputError) -> Value:
    """Parse one YAML document. Malformed YAML raises ``error_type`` with the YAML mark's line.

    An empty document is a :class:`Value` whose ``data`` is ``None``.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else _Builder(loader, source, error_type).build(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = e.problem or e.context or "malformed document"
        if e.context and e.problem:
            what += f" ({e.context})"
        raise error_type(f"invalid YAML: {what}", source=source,
                         line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as e:
        raise error_type(f"invalid YAML: {e}", source=source) from None
    finally:
        loader.dispose()
    return Value(data, source, 1 if node is None else node.start_mark.line + 1, "",
                 error_type)


class _Builder:
    def __init__(self, loader: _Loader, source: str, error_type: type[InputError]) -> None:
        self.loader = loader
        self.source = source
        self.error_type = error_type
        self.active: set[int] = set()  # nodes being built: an alias to one of them is a cycle

    def fail(self, node: yaml.Node, message: str) -> InputError:
        return self.error_type(message, source=self.source, line=node.start_mark.line + 1)

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, ScalarNode):
            return self.loader.construct_object(node)
        if id(node) in self.active:
            raise self.fail(node, "invalid YAML: an alias refers to a node that contains it")
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node)
            assert isinstance(node, MappingNode)
            return self._mapping(node)
        finally:
            self.active.discard(id(node))

    def _sequence(self, node: SequenceNode) -> YamlList:
        out = YamlList(node.start_mark.line + 1)
        for item in node.value:
            out.append(self.build(item))
            out.item_lines.append(item.start_mark.line + 1)
        return out

    def _mapping(self, node: MappingNode) -> YamlMap:
        out = YamlMap(node.start_mark.line + 1)
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                raise self.fail(key_node, "a mapping key must be a plain name, not a "
                                          "list or mapping")
            key = str(key_node.value)
            if key in out:
                raise self.fail(key_node, f"duplicate field {key!r} (first on line "
                                          f"{out.key_lines[key]})")
            out[key] = self.build(value_node)
            out.key_lines[key] = key_node.start_mark.line + 1
        # Merged keys never override explicit ones, whatever the order they appear in.
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for src in sources:
                merged = self.build(src)
                if not isinstance(merged, YamlMap):
                    raise self.fail(src, "invalid YAML: '<<' merges only mappings")
                for key, value in merged.items():
                    if key not in out:
                        out[key] = value
                        out.key_lines[key] = merged.key_lines[key]
        return out


def to_plain(data: Any) -> Any:
    """``data`` with every :class:`YamlMap`/:class:`YamlList` turned into a bare dict/list."""
    if isinstance(data, dict):
        return {k: to_plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_plain(v) for v in data]
    return data


def _show(data: Any) -> str:
    if data is None:
        return "nothing"
    if isinstance(data, dict):
        return "a mapping"
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return repr(data)
    return str(data).lower() if isinstance(data, bool) else f"{data!r}"


@dataclass(frozen=True, slots=True)
class Value:
    """One value read from a YAML source, with where it came from.

    ``line`` is the line of the key (for a mapping value) or of the item (for a sequence
    item); ``field`` is its path from the document root (``pending[2].gpus``; ``""`` for
    the root). Errors made by :meth:`error` are of ``error_type``.
    """

    data: Any
    source: str
    line: int | None
    field: str
    error_type: type[InputError] = InputError

    def error(self, message: str) -> InputError:
        return self.error_type(message, source=self.source, line=self.line,
                               field=self.field or None)

    def at(self, data: Any, line: int | None, step: str) -> Value:
        """A value below this one: ``step`` is ``".key"`` or ``"[i]"``."""
        path = f"{self.field}{step}" if self.field or step.startswith("[") else step[1:]
        return Value(data, self.source, line, path, self.error_type)

    def relocate(self, err: InputError) -> InputError:
        """``err``, raised about this value (by the core, or a parser of the value's text),
        with this value's source, line and field path. An error that already names its
        own source (another file) is returned unchanged."""
        if err.source is not None:
            return err
        return type(err)(err.message, field=self.field or err.field, source=self.source,
                         line=err.line if err.line is not None else self.line)

    # -- scalars ---------------------------------------------------------------------
    def as_int(self, *, ge: int | None = None) -> int:
        """A whole number (``true``/``false`` are not numbers), at least ``ge`` if given."""
        d = self.data
        bound = f" >= {ge}" if ge is not None else ""
        if isinstance(d, bool) or not isinstance(d, int):
            raise self.error(f"must be a whole number{bound}, got {_show(d)}")
        if ge is not None and d < ge:
            raise self.error(f"must be a whole number{bound}, got {d}")
        return d

    def as_float(self, *, ge: float | None = None, finite: bool = False) -> float:
        """A number (whole or not); never NaN; infinite only if not ``finite``."""
        d = self.data
        bound = f" >= {ge:g}" if ge is not None else ""
        if isinstance(d, bool) or not isinstance(d, int | float):
            raise self.error(f"must be a number{bound}, got {_show(d)}")
        try:
            d = float(d)
        except OverflowError:  # a whole number too large for a float
            raise self.error(f"must be a number{bound}, got one too large") from None
        if math.isnan(d):
            raise self.error(f"must be a number{bound}, got nan")
        if finite and math.isinf(d):
            raise self.error(f"must be a finite number, got {d}")
        if ge is not None and d < ge:
            raise self.error(f"must be a number{bound}, got {d:g}")
        return d

    def as_str(self, *, nonempty: bool = True) -> str:
        d = self.data
        if not isinstance(d, str):
            raise self.error(f"must be a string, got {_show(d)}")
        if nonempty and not d.strip():
            raise self.error("must not be empty")
        return d

    def as_id(self) -> str:
        """A name or number used as an identifier (``12`` and ``"12"`` are the same id)."""
        if isinstance(self.data, int) and not isinstance(self.data, bool):
            return str(self.data)
        if not isinstance(self.data, str):
            raise self.error(f"must be a string or a whole number, got {_show(self.data)}")
        return self.as_str()

    def as_bool(self) -> bool:
        if not isinstance(self.data, bool):
            raise self.error(f"must be true or false, got {_show(self.data)}")
        return self.data

    # -- collections -----------------------------------------------------------------
    def as_list(self) -> list[Value]:
        """The items of a sequence, each with its own line and path."""
        if not isinstance(self.data, YamlList):
            raise self.error(f"must be a list, got {_show(self.data)}")
        return [self.at(item, line, f"[{i}]")
                for i, (item, line) in enumerate(zip(self.data, self.data.item_lines,
                                                     strict=True))]

    def as_strings(self) -> list[Value]:
        """One string, or a list of strings: the strings as values (checked to be strings)."""
        items = [self] if isinstance(self.data, str) else self.as_list()
        for item in items:
            item.as_str()
        return items

    def as_entries(self, *, null_ok: bool = True) -> list[tuple[str, Value]]:
        """The entries of a mapping with free keys (``usage: {proj-a: 3600}``)."""
        if self.data is None and null_ok:
            return []
        if not isinstance(self.data, YamlMap):
            raise self.error(f"must be a mapping, got {_show(self.data)}")
        lines = self.data.key_lines
        return [(k, self.at(v, lines[k], f".{k}")) for k, v in self.data.items()]

    def as_fields(self, required: Iterable[str] = (), optional: Iterable[str] = (), *,
                  null_ok: bool = False) -> Fields:
        """This mapping, read with a closed set of keys (see :class:`Fields`).

        With ``null_ok`` an empty value (``key:`` or ``~``) reads as an empty mapping.
        """
        return Fields(self, required, optional, null_ok=null_ok)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class Fields:
    """A mapping with known keys only, read field by field with type checks.

    On construction: a key that is neither ``required`` nor ``optional`` is an error at its
    line (with a "did you mean" hint), a missing required key an error at the mapping's line.
    An optional key whose value is empty (``key:`` or ``~``) counts as absent and reads as
    its default. Accessors take an optional ``default``; without one the key is required.
    """

    def __init__(self, value: Value, required: Iterable[str] = (),
                 optional: Iterable[str] = (), *, null_ok: bool = False) -> None:
        data = value.data
        if data is None and null_ok:
            data = YamlMap(value.line or 1)
        if not isinstance(data, YamlMap):
            raise value.error(f"must be a mapping, got {_show(data)}")
        self.value = Value(data, value.source, value.line, value.field, value.error_type)
        self.data: YamlMap = data
        required = tuple(required)
        known = (*required, *optional)
        for key in data:
            if key not in known:
                near = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {near[0]!r}?" if near else \
                    f"expected one of: {', '.join(sorted(known))}"
                raise self.get(key).error(f"unknown field ({hint})")
        for key in required:
            if key not in data:
                raise self.value.at(None, value.line, f".{key}").error("is required")

    def __contains__(self, key: str) -> bool:
        return self.data.get(key) is not None

    def line_of(self, key: str) -> int | None:
        """The line of ``key``, or of the mapping itself when the key is absent."""
        return self.data.key_lines.get(key, self.value.line)

    def get(self, key: str) -> Value:
        """The value under ``key`` (``data`` is ``None`` when it is absent)."""
        return self.value.at(self.data.get(key), self.line_of(key), f".{key}")

    def opt(self, key: str) -> Value | None:
        """The value under ``key``, or ``None`` when it is absent or empty."""
        return self.get(key) if key in self else None

    def error(self, key: str, message: str) -> InputError:
        """An error about ``key``, at its line, naming its path."""
        return self.get(key).error(message)

    def relocate(self, err: InputError) -> InputError:
        """``err``, raised by the core about a key of this mapping (``err.field`` names the
        key, as in ``JobSpec``'s errors), located at that key's line with the path
        prefixed. An error that already names its own source is returned unchanged."""
        if err.source is not None:
            return err
        key_line = self.data.key_lines.get(err.field.partition(".")[0]) if err.field else None
        if self.value.field:
            err = err.prefixed(self.value.field)
        return err.located(source=self.value.source,
                           line=key_line if key_line is not None else self.value.line)

    def _take(self, key: str, default: Any) -> Value | None:
        v = self.opt(key)
        if v is None and default is REQUIRED:
            v = self.get(key)  # absent or empty, but needed: the type check names it
        return v

    @overload
    def integer(self, key: str, *, ge: int | None = None) -> int: ...
    @overload
    def integer(self, key: str, default: T, *, ge: int | None = None) -> int | T: ...
    def integer(self, key: str, default: Any = REQUIRED, *, ge: int | None = None) -> Any:
        v = self._take(key, default)
        return default if v is None else v.as_int(ge=ge)

    @overload
    def number(self, key: str, *, ge: float | None = None, finite: bool = False) -> float: ...
    @overload
    def number(self, key: str, default: T, *, ge: float | None = None,
               finite: bool = False) -> float | T: ...
    def number(self, key: str, default: Any = REQUIRED, *, ge: float | None = None,
               finite: bool = False) -> Any:
        v = self._take(key, default)
        return default if v is None else v.as_float(ge=ge, finite=finite)

    @overload
    def string(self, key: str) -> str: ...
    @overload
    def string(self, key: str, default: T) -> str | T: ...
    def string(self, key: str, default: Any = REQUIRED) -> Any:
        v = self._take(key, default)
        return default if v is None else v.as_str()

    @overload
    def ident(self, key: str) -> str: ...
    @overload
    def ident(self, key: str, default: T) -> str | T: ...
    def ident(self, key: str, default: Any = REQUIRED) -> Any:
        v = self._take(key, default)
        return default if v is None else v.as_id()

    @overload
    def boolean(self, key: str) -> bool: ...
    @overload
    def boolean(self, key: str, default: T) -> bool | T: ...
    def boolean(self, key: str, default: Any = REQUIRED) -> Any:
        v = self._take(key, default)
        return default if v is None else v.as_bool()

    def items(self, key: str) -> list[Value]:
        """The items of the list under ``key``; ``[]`` when the key is absent or empty."""
        v = self.opt(key)
        return [] if v is None else v.as_list()

    def strings(self, key: str) -> list[str]:
        """One string or a list of strings under ``key``; ``[]`` when absent or empty."""
        v = self.opt(key)
        return [] if v is None else [s.data for s in v.as_strings()]
