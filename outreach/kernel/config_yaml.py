"""Reading the YAML files operations write: pydantic validation whose every error carries the
YAML path (``stages[0].actions[1].cadence``) and line, and names the known keys when a key is
unknown. The one loader behind channels.yaml, policy.yaml, agencies.yaml and the ladders."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class ConfigError:
    """One problem in a config file: where (the YAML path, the line) and what."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path} (line {self.line})" if self.line else self.path
        return f"{where}: {self.message}"


class ConfigFileError(ValueError):
    """A config file that does not validate: every problem, one ``file: path: message`` a line."""

    def __init__(self, source: str, errors: list[ConfigError]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} error(s)\n" + "\n".join(map(str, errors)))

    def lines(self) -> list[str]:
        return [f"{self.source}: {error}" for error in self.errors]


def path_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


class StrictLoader(yaml.SafeLoader):
    """The loader for every file operations write: a safe loader that refuses aliases (``*name``:
    nested aliases expand exponentially, so a few hundred bytes could take the api-server's
    memory, and no config file needs them) and keys written twice in one mapping (YAML keeps the
    last silently: a merge leftover ``role: creditor`` would switch the rule packs)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in configuration files",
                event.start_mark,
            )  # fmt: skip
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class says so
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (first on line {first})",
                    key_node.start_mark,
                )  # fmt: skip
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def line_index(text: str) -> dict[str, int]:
    """YAML path -> 1-based line, from the composed node tree, so errors point at the file."""
    index: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=StrictLoader)
    except yaml.YAMLError:
        return index

    def walk(node: yaml.Node, loc: tuple[Any, ...]) -> None:
        index[path_text(loc)] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, (*loc, key.value))
                index.setdefault(path_text((*loc, key.value)), key.start_mark.line + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*loc, i))

    if root is not None:
        walk(root, ())
    return index


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (``X | None``, ``tuple[X, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, tuple, list, dict):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model allows in the mapping at ``loc`` (the parent of an unknown key)."""
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a sequence: the same models
        found = [
            sub
            for m in current
            if (field := m.model_fields.get(str(part))) is not None
            for sub in _models_in(field.annotation)
        ]
        if not found:
            return []
        current = found
    return sorted({name for m in current for name in m.model_fields})


# pydantic's words for a wrong shape, in the words of the YAML an operator wrote.
SHAPES = {
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
}


def _message(model: type[BaseModel], err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        keys = known_keys(model, tuple(err["loc"])[:-1])
        return "unknown key" + (f"; known keys: {', '.join(keys)}" if keys else "")
    if kind in SHAPES:
        return SHAPES[kind]
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error") or err["msg"])
    return str(err["msg"])


M = TypeVar("M", bound=BaseModel)


def validate_yaml(
    text: str, model: type[M], *, root: tuple[str, ...] = ()
) -> tuple[M | None, list[ConfigError], dict[str, int]]:
    """Parse YAML that operations write and validate it as ``model``: the model or the errors,
    each with its YAML path (under ``root``, e.g. ``channels``) and line, and the line of every
    path (for later checks' errors). Error messages never quote the value (it may be personal
    data or a secret)."""
    try:
        raw = yaml.load(text, Loader=StrictLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return (
            None,
            [
                ConfigError(
                    path_text(root) if root else "(file)",
                    f"not valid YAML: {getattr(exc, 'problem', exc)}",
                    mark.line + 1 if mark else None,
                )
            ],
            {},
        )
    lines = line_index(text)
    try:
        return model.model_validate({} if raw is None else raw), [], lines
    except ValidationError as exc:
        found = [(tuple(err["loc"]), err) for err in exc.errors()]
        errors = [
            ConfigError(path_text((*root, *loc)), _message(model, err), lines.get(path_text(loc)))
            for loc, err in found
            # A list whose only item failed also reports "too short": noise, the item says why.
            if not (err["type"] == "too_short"
                    and any(other[: len(loc)] == loc and len(other) > len(loc)
                            for other, _ in found))
        ]  # fmt: skip
        return None, errors, lines


def located(problems: Iterable[tuple[str, str]], lines: dict[str, int]) -> list[ConfigError]:
    """Checks that pydantic cannot make (cross-field, cross-file): each (YAML path, message)
    as an error with the line of that path, or of the key that holds it."""
    return [
        ConfigError(path, msg, lines.get(path) or lines.get(path.rsplit(".", 1)[0]))
        for path, msg in problems
    ]


T = TypeVar("T")


@lru_cache(maxsize=32)
def _parsed(parse: Callable[[str, str], Any], path: str, mtime_ns: int) -> Any:
    return parse(Path(path).read_text(encoding="utf-8"), path)


def read_config_file(path: Path, parse: Callable[[str, str], T], absent: Callable[[], T]) -> T:
    """``parse(text, path)`` of a config file, parsed again only when the file changes (its
    modification time); ``absent()`` when there is no such file."""
    if not path.is_file():
        return absent()
    return cast(T, _parsed(parse, str(path), path.stat().st_mtime_ns))
