"""Errors have one place per package and two exits; no handler decides by an error's message.

Every exception class the project defines lives in its package's `errors.py`, is drawn in
that module's docstring tree, and derives from UsageError (exit 2), PipelineError (exit 1) or
SkipError (a counted skip that never reaches the CLI).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.errors import MessageReason
from schemas.errors import PipelineError, SchemaReason, SkipError, UsageError
from streamer.errors import FrameReason, OpReason, RelayMessage

ROOT = Path(__file__).resolve().parents[2]
# every package pyproject.toml installs: a new package is checked without editing this test
_PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = tuple(_PYPROJECT["tool"]["setuptools"]["packages"])
SOURCE_DIRS = (*PACKAGES, "bench", "scripts")
ROOTS = (UsageError, PipelineError, SkipError)
# the roots themselves (schemas/errors.py) and nothing else may derive from none of ROOTS
ROOT_NAMES = {"BluepulseError", "UsageError", "PipelineError", "SkipError"}


def project_modules() -> Iterator[str]:
    for package in PACKAGES:
        yield package
        path = [str(ROOT / package)]
        for info in pkgutil.walk_packages(path, prefix=f"{package}."):
            if not info.name.endswith(".__main__"):  # importing it would run the command
                yield info.name


def exception_classes() -> list[tuple[str, type[BaseException]]]:
    found = []
    for name in project_modules():
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == name and issubclass(obj, BaseException):
                found.append((name, obj))
    return found


CLASSES = exception_classes()
IDS = [f"{module}.{cls.__name__}" for module, cls in CLASSES]


def test_the_walk_finds_the_classes_it_is_about() -> None:
    names = {cls.__name__ for _, cls in CLASSES}
    assert {"StoreError", "StoreHeldError", "FrameError", "TaskFailedError", "CaptureError"} <= names


@pytest.mark.parametrize(("module", "cls"), CLASSES, ids=IDS)
def test_every_exception_lives_in_an_errors_module_under_one_root(module: str, cls: type) -> None:
    assert module.endswith(".errors"), f"{module}.{cls.__name__}: move it to its package's errors.py"
    if cls.__name__ not in ROOT_NAMES:
        roots = [root.__name__ for root in ROOTS if issubclass(cls, root)]
        assert len(roots) == 1, (
            f"{cls.__name__} derives from {roots or 'none'} of UsageError/PipelineError/SkipError"
        )


@pytest.mark.parametrize(("module", "cls"), CLASSES, ids=IDS)
def test_every_exception_is_drawn_in_its_module_docstring_tree(module: str, cls: type) -> None:
    doc = importlib.import_module(module).__doc__ or ""
    assert cls.__name__ in doc, f"{module}: add {cls.__name__} to the tree in the docstring"


def _reads_message(node: ast.AST, name: str) -> bool:
    """`str(name)`, `repr(name)`, `f"{name}"` or `name.args`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"str", "repr"}:
        return any(isinstance(arg, ast.Name) and arg.id == name for arg in node.args)
    if isinstance(node, ast.FormattedValue):
        return isinstance(node.value, ast.Name) and node.value.id == name
    if isinstance(node, ast.Attribute) and node.attr == "args":
        return isinstance(node.value, ast.Name) and node.value.id == name
    return False


def _message_reads(handler: ast.ExceptHandler) -> Iterator[ast.Compare]:
    """Comparisons in the handler's body that involve the text of the exception it caught."""
    if handler.name is None:
        return
    for node in ast.walk(ast.Module(body=handler.body, type_ignores=[])):
        if isinstance(node, ast.Compare) and any(
            _reads_message(part, handler.name) for part in ast.walk(node)
        ):
            yield node


def source_files() -> Iterator[Path]:
    for directory in SOURCE_DIRS:
        yield from sorted((ROOT / directory).rglob("*.py"))


def test_no_except_handler_decides_by_the_message_text() -> None:
    offenders = []
    for path in source_files():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler):
                for compare in _message_reads(node):
                    offenders.append(f"{path.relative_to(ROOT)}:{compare.lineno}: {ast.unparse(compare)}")
    assert offenders == [], "decide by the exception's type (see aggregator.errors.lock_held):\n" + "\n".join(
        offenders
    )


def test_the_checker_sees_a_message_comparison() -> None:
    code = "try:\n    pass\nexcept OSError as exc:\n    if 'lock' in str(exc).lower():\n        raise\n"
    handler = next(n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.ExceptHandler))
    assert len(list(_message_reads(handler))) == 1


def test_reason_values_are_the_metric_labels_of_today() -> None:
    """The enums name the labels /metrics already exposes: renaming a value breaks dashboards."""
    frames = "untracked oversized bad_cbor bad_header bad_body bad_car unknown_type too_deep bad_length"
    jetstream = "bad_json bad_utf8 bad_zstd zstd_bomb"  # issue 13
    assert {r.value for r in FrameReason} == {
        *frames.split(),
        *jetstream.split(),
        "too_many_items",
        "internal",
    }
    assert {r.value for r in OpReason} == {"bad_op", "missing_block", "bad_record"}
    assert {r.value for r in RelayMessage} == {"FutureCursor", "ConsumerTooSlow", "OutdatedCursor", "other"}
    consumer = "bad_position_marker missing_schema_header unknown_schema_header empty_value"
    contract = "not_json not_object unknown_version unknown_field missing_field bad_field"
    assert {r.value for r in MessageReason} == set(consumer.split())
    assert {r.value for r in SchemaReason} == set(contract.split())
