"""How a setting is declared once and what is derived from it: flag, env var, parser, README row.

A setting is a field of a frozen dataclass (`bluepulse.config`) declared with `setting(default,
parse, help)`: its name gives the flag (`--metrics-port`) and the variable
(`BLUEPULSE_METRICS_PORT`), `parse` checks a value and fixes the field's type (mypy holds the
two equal), and the commands it applies to are the command configs that include it. A flag
beats the env var, which beats the default; unknown BLUEPULSE_* variables and bad values are all
reported at once, before anything starts.
"""

from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import ClassVar, Final, TypeVar

from bluepulse.errors import ConfigError

T = TypeVar("T")
C = TypeVar("C", bound="Config")

SPEC: Final = "bluepulse.setting"
_ORDER = itertools.count()  # declaration order: the order of --help and of the README table
# Read by scripts/kafka (the development broker) and the test suite, not by the CLI.
TOOLING_ENV: Final = frozenset({"BLUEPULSE_KAFKA_DIR", "BLUEPULSE_KAFKA_HOME", "BLUEPULSE_KAFKA_PORT"})


@dataclass(frozen=True, slots=True)
class Spec:
    """What a field says about itself besides its name, type and default."""

    parse: Callable[[str], object]
    help: str
    order: int
    unset: str = "not set"  # what leaving a None-default option out means, for --help
    secret: bool = False  # never logged, never echoed in an error
    switch: bool = False  # `--loop`, no value (the env var still takes true/false)
    positional: bool = False  # `bluepulse sql QUERY`: an argument, no flag and no env var
    choices: tuple[str, ...] = ()
    many: bool = False  # a positional taking any number of values (`accounts add HANDLE…`)
    repeat: bool = (
        False  # a flag given once per value (`sql --db a --db b`); the env var: os.pathsep-separated
    )
    flag: str | None = None  # the flag's own name when the field's cannot be it (`--from`)
    # command → (help, default as shown) where a command uses the setting its own way
    per_command: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def setting(
    default: T,
    parse: Callable[[str], T],
    help: str,
    *,
    unset: str = "not set",
    secret: bool = False,
    switch: bool = False,
    per_command: Mapping[str, tuple[str, str]] | None = None,
    flag: str | None = None,
) -> T:
    """A field with a flag and a BLUEPULSE_* variable; typed as its default (see dataclasses.field).
    `flag` names the option when the field name cannot (`--from` on the field `start`)."""
    spec = Spec(parse, help, next(_ORDER), unset, secret, switch, per_command=per_command or {}, flag=flag)
    return field(default=default, metadata={SPEC: spec})


def repeated(
    default: tuple[T, ...], parse: Callable[[str], T], help: str, *, flag: str | None = None
) -> tuple[T, ...]:
    """A flag that may be given several times, each value parsed by `parse` (`--db a --db b`);
    its variable holds the values separated by os.pathsep (`a.duckdb:b.duckdb`)."""
    spec = Spec(parse, help, next(_ORDER), repeat=True, flag=flag)
    return field(default=default, metadata={SPEC: spec})


def argument(default: str, help: str, *, choices: tuple[str, ...] = ()) -> str:
    """A positional command-line argument (`accounts list`, `sql QUERY`): no env var."""
    spec = Spec(str, help, next(_ORDER), positional=True, choices=choices)
    return field(default=default, metadata={SPEC: spec})


def arguments(help: str) -> tuple[str, ...]:
    """Positional arguments after the others, any number of them (`accounts add A B C`)."""
    spec = Spec(str, help, next(_ORDER), positional=True, many=True)
    return field(default=(), metadata={SPEC: spec})


@dataclass(frozen=True, kw_only=True)
class Config:
    """A command's whole configuration: the settings groups it inherits, plus its own fields."""

    command: ClassVar[str]
    summary: ClassVar[str]  # one line, for `bluepulse --help`

    def public(self) -> dict[str, object]:
        """Values safe to log (secrets masked)."""
        values = {name: (getattr(self, name), spec_of(f).secret) for name, f in _by_name(self)}
        return {name: ("***" if secret and value else value) for name, (value, secret) in values.items()}


def derive(config: type[C], base: Config) -> C:
    """A `config` with every setting it shares with `base` (the demo's `run`); defaults elsewhere."""
    mine = {name for name, _ in _by_name(config)}
    return config(**{name: getattr(base, name) for name, _ in _by_name(base) if name in mine})


def spec_of(f: Field[object]) -> Spec:
    spec = f.metadata[SPEC]
    assert isinstance(spec, Spec), f"{f.name}: declare it with setting() or argument()"
    return spec


def _by_name(config: Config | type[Config]) -> Iterator[tuple[str, Field[object]]]:
    return ((f.name, f) for f in fields(config))


@dataclass(frozen=True, slots=True)
class Option:
    """One setting across every command that has it: what --help, the env reader and the README use."""

    name: str
    default: object
    spec: Spec
    commands: tuple[str, ...]

    @property
    def flag(self) -> str:
        return "--" + (self.spec.flag or self.name).replace("_", "-")

    @property
    def env(self) -> str:
        return "BLUEPULSE_" + (self.spec.flag or self.name).upper().replace("-", "_")

    @property
    def help(self) -> str:
        return self.spec.help

    @property
    def parse(self) -> Callable[[str], object]:
        return self.spec.parse

    @property
    def secret(self) -> bool:
        return self.spec.secret

    @property
    def unset(self) -> str:
        return self.spec.unset


def collect(configs: Collection[type[Config]]) -> tuple[Option, ...]:
    """Every setting of `configs` once, in declaration order, with the commands that include it.

    Two groups may declare the same name for disjoint commands (`--jetstream URL` on run and
    streamer, the `--jetstream` switch of the demo): each is its own option, flag and row."""
    found: dict[tuple[str, int], tuple[Field[object], list[str]]] = {}
    for config in configs:
        for name, f in _by_name(config):
            found.setdefault((name, id(spec_of(f))), (f, []))[1].append(config.command)
    options = [Option(name, f.default, spec_of(f), tuple(cmds)) for (name, _), (f, cmds) in found.items()]
    return tuple(sorted(options, key=lambda o: o.spec.order))


def shown_default(option: Option, command: str) -> str:
    """The default as --help shows it: what an unset option means, never `None`."""
    if command in option.spec.per_command:
        return option.spec.per_command[command][1]
    if option.spec.switch:
        return "off"
    return option.unset if option.default is None else _shown(option)


def _shown(option: Option) -> str:
    """A default as a person writes it: a repeated setting's values separated by spaces."""
    if option.spec.repeat and isinstance(option.default, tuple):
        return " ".join(str(v) for v in option.default)
    return str(option.default)


def add_arguments(parser: argparse.ArgumentParser, command: str, options: Collection[Option]) -> None:
    """The command's positional arguments, then its flags, each help ending [ENV; default: …]."""
    mine = [o for o in options if command in o.commands]
    for o in (o for o in mine if o.spec.positional):
        if o.spec.many:
            parser.add_argument(o.name, nargs="*", default=None, help=o.help, metavar=o.name.upper())
        else:
            parser.add_argument(o.name, help=o.help, choices=list(o.spec.choices) or None)
    for o in (o for o in mine if not o.spec.positional):
        text = o.spec.per_command.get(command, (o.help, ""))[0]
        help_text = f"{text} [{o.env}; default: {shown_default(o, command)}]"
        if o.spec.switch:
            parser.add_argument(o.flag, dest=o.name, default=None, action="store_true", help=help_text)
        elif o.spec.repeat:
            metavar = o.name.split("_")[-1].upper()
            parser.add_argument(
                o.flag, dest=o.name, default=None, action="append", metavar=metavar, help=help_text
            )
        else:
            metavar = o.name.split("_")[-1].upper()
            parser.add_argument(o.flag, dest=o.name, default=None, metavar=metavar, help=help_text)


def resolve_into(
    config: type[C],
    flags: Mapping[str, object],
    environ: Mapping[str, str] | None,
    known_env: Collection[str],
) -> C:
    """`config` from flags (None = not given), then `environ`, then defaults; ConfigError lists all."""
    env = os.environ if environ is None else environ
    problems = [
        f"unknown environment variable {key}"
        for key in sorted(env)
        if key.startswith("BLUEPULSE_")
        and key not in known_env
        and key not in TOOLING_ENV
        and not key.startswith("BLUEPULSE_TEST_")
    ]
    values: dict[str, object] = {}
    for name, f in _by_name(config):
        spec, option = spec_of(f), Option(name, f.default, spec_of(f), (config.command,))
        raw, origin = flags.get(name), option.flag
        if raw is None and not spec.positional and option.env in env:
            raw, origin = env[option.env], option.env
        if raw is None:
            continue  # the field's default
        if spec.many:
            values[name] = tuple(str(v) for v in raw) if isinstance(raw, list | tuple) else (str(raw),)
            continue
        if spec.repeat:
            items = [str(v) for v in raw] if isinstance(raw, list | tuple) else str(raw).split(os.pathsep)
            try:
                values[name] = tuple(spec.parse(item) for item in items if item)
            except ValueError as exc:
                problems.append(f"{origin}={raw!r}: {exc}")
            continue
        try:
            values[name] = spec.parse(str(raw))
        except ValueError as exc:
            shown = "***" if spec.secret else repr(raw)
            problems.append(f"{origin}={shown}: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))
    return config(**values)


def readme_row(option: Option, all_commands: Collection[str]) -> str:
    """The option's row of the README's configuration table."""
    default = "—" if option.default is None else f"`{_shown(option)}`"
    commands = "all" if set(option.commands) >= set(all_commands) else ", ".join(option.commands)
    meaning = option.help
    if option.spec.switch:
        meaning += f" (a switch: `{option.flag}`; the variable takes true/false)"
    elif option.spec.repeat:
        meaning += f" (repeatable: `{option.flag} A {option.flag} B`; the variable: `A{os.pathsep}B`)"
    elif option.default is None:
        meaning += f"; unset: {option.unset.removeprefix('none: ')}"
    return f"| `{option.flag}` | `{option.env}` | {default} | {commands} | {meaning} |"


README_HEADER: Final = "| flag | environment variable | default | commands | meaning |\n|---|---|---|---|---|"


def readme_table(options: Collection[Option], all_commands: Collection[str]) -> str:
    rows = [readme_row(o, all_commands) for o in options]
    return "\n".join([README_HEADER, *rows])
