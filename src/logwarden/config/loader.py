"""Reading `logwarden.yaml`: every problem reported at once, then the effective config.

`load(path)` reads the file, checks every section and field against the schema and raises
one `ConfigError` listing every problem with its file:line and path
(``logwarden.yaml:7: sources.audit.listen: expected host:port, got "8443"``). A good file
becomes the effective `Config`: paths with ``~`` expanded and made relative to the config
file's directory, and the defaults that depend on `data_dir` filled in. `load(None)` is
the embedded default.
"""

from __future__ import annotations

import os
from typing import Any, Literal, TypeVar

import msgspec
import yaml

from logwarden._regular import NotRegular, TooLarge, read_regular
from logwarden.config._types import Spec, fields, spec
from logwarden.config._validate import Validator
from logwarden.config._yaml import Lines, position, read_yaml
from logwarden.config.checks import RULE_SETS
from logwarden.config.errors import ConfigError, Problem
from logwarden.config.schema import Config

__all__ = ["dump", "load", "load_text"]

S = TypeVar("S", bound=msgspec.Struct)

#: The largest config file read; the documented example is 3 KiB.
MAX_BYTES = 1 << 20


def load(path: str | None = None, *, data_dir: str | None = None) -> Config:
    """The effective config of the file at `path`, or the embedded default for None;
    `data_dir` (relative to the current directory) replaces the file's.

    Raises `ConfigError` with every problem of the file.
    """
    if path is None:
        data = {"data_dir": os.path.abspath(data_dir)} if data_dir else {}
        return _build(data, None, {}, [], os.getcwd())
    text = _read(path)
    return load_text(text, path, os.path.dirname(os.path.abspath(path)), data_dir=data_dir)


def _read(path: str) -> str:
    """The text of the config file at `path`; `ConfigError` when it is not a readable,
    regular UTF-8 file of at most `MAX_BYTES` (a FIFO is refused, not waited on)."""

    def wrong(message: str, line: int = 0, column: int = 0) -> ConfigError:
        return ConfigError([Problem(message, file=path, line=line, column=column)])

    try:
        data = read_regular(path, MAX_BYTES)
    except NotRegular as exc:
        if exc.directory:
            raise wrong("a directory, not a config file") from None
        raise wrong("not a regular file (a FIFO, socket or device): give a config file") from None
    except TooLarge:
        raise wrong(f"larger than {MAX_BYTES >> 20} MiB: not a config file") from None
    except OSError as exc:
        raise wrong(f"cannot read: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = position(data, exc.start)
        byte = data[exc.start]
        raise wrong(f"not UTF-8 text (byte 0x{byte:02x})", line, column) from exc


def load_text(
    text: str, file: str = "<config>", base_dir: str | None = None, *, data_dir: str | None = None
) -> Config:
    """The effective config of YAML `text`, named `file` in messages; relative paths are
    relative to `base_dir` (default: the current directory); `data_dir` as in `load`."""
    data, lines, problems = read_yaml(text, file)
    if problems and data is None:
        raise ConfigError(problems)
    data = {} if data is None else data
    if data_dir and isinstance(data, dict):
        data = {**data, "data_dir": os.path.abspath(data_dir)}
    return _build(data, file, lines, problems, base_dir or os.getcwd())


def dump(config: Config) -> str:
    """The config as YAML, every field written out (what `logwarden config show` prints)."""
    text: str = yaml.safe_dump(
        msgspec.to_builtins(config), sort_keys=False, default_flow_style=False
    )
    return text


def _build(
    data: Any, file: str | None, lines: Lines, problems: list[Problem], base_dir: str
) -> Config:
    validator = Validator(file, lines)
    config = validator.struct(Config, data)
    problems = problems + validator.problems
    if problems or config is None:
        raise ConfigError(problems)
    return _derived(_resolved(config, base_dir))


def _derived(config: Config) -> Config:
    """Fill the defaults that depend on `data_dir`."""
    ledger = config.ledger
    changes = {}
    if not ledger.path:
        changes["path"] = os.path.join(config.data_dir, "ledger")
    if not ledger.key_file:
        changes["key_file"] = os.path.join(config.data_dir, "ledger.key")
    config = msgspec.structs.replace(config, ledger=msgspec.structs.replace(ledger, **changes))
    api = config.alerts.api
    if not api.token_file:
        api = msgspec.structs.replace(api, token_file=os.path.join(config.data_dir, "api.token"))
        alerts = msgspec.structs.replace(config.alerts, api=api)
        config = msgspec.structs.replace(config, alerts=alerts)
    return config


def _resolved(obj: S, base_dir: str) -> S:
    """`obj` with every path field expanded and made absolute against `base_dir`."""
    changes = {}
    for f in fields(type(obj)):
        old = getattr(obj, f.attr)
        new = _resolved_value(f.spec, old, base_dir)
        if new is not old:
            changes[f.attr] = new
    return msgspec.structs.replace(obj, **changes) if changes else obj


def _resolved_value(s: Spec, value: Any, base_dir: str) -> Any:
    if isinstance(value, msgspec.Struct):
        return _resolved(value, base_dir)
    if isinstance(value, list):
        item = spec(s.args[0])
        return [_resolved_value(item, v, base_dir) for v in value]
    if isinstance(value, dict):
        item = spec(s.args[1])
        return {k: _resolved_value(item, v, base_dir) for k, v in value.items()}
    if isinstance(value, str) and s.check is not None and s.check.resolve is not None:
        return _path(value, s.check.resolve, base_dir)
    return value


def _path(value: str, kind: Literal["path", "rule"], base_dir: str) -> str:
    if not value or (kind == "rule" and value in RULE_SETS):
        return value
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))
