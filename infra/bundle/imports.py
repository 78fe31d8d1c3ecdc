"""Find every import a Python file makes, statically, and how much it matters.

The build step never imports the code it packages (that would need every dependency installed and
could run arbitrary module-level code); it reads the syntax tree instead. An import is recorded with:

* ``module``: the absolute dotted name (relative imports resolved against the file's package);
* ``names``: for ``from X import a, b``, the names (each may itself be a submodule ``X.a``);
* ``type_checking``: inside ``if TYPE_CHECKING:`` — never executed at run time;
* ``optional``: inside a ``try`` whose handlers catch ``ImportError``/``ModuleNotFoundError`` — the
  code copes without it.

Imports inside functions count like any other: a lazy ``import onnxruntime`` in a handler runs in
Lambda just the same. ``importlib.import_module("x")`` and ``__import__("x")`` with a literal string
are recorded too, so a banned module cannot slip in through a string.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


@dataclass(frozen=True)
class ImportUse:
    module: str
    names: tuple[str, ...]
    path: Path
    line: int
    type_checking: bool
    optional: bool

    @property
    def top_level(self) -> str:
        return self.module.split(".")[0]

    def where(self, root: Path | None = None) -> str:
        shown = self.path.relative_to(root) if root is not None else self.path
        return f"{shown}:{self.line}"


class ImportSyntaxError(ValueError):
    """A file to be packaged does not parse (it would fail in Lambda too)."""


def module_name_of(path: Path, root: Path) -> tuple[str, bool]:
    """Dotted module name of ``path`` under ``root``, and whether it is a package ``__init__``."""
    relative = path.relative_to(root).with_suffix("")
    parts = list(relative.parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _resolve_relative(module: str | None, level: int, current: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    package_parts = current.split(".") if is_package else current.split(".")[:-1]
    if level - 1 > len(package_parts):
        raise ImportSyntaxError(f"relative import beyond the top-level package in {current}")
    base = package_parts[: len(package_parts) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _is_type_checking_test(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return False


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for kind in kinds:
            name = kind.id if isinstance(kind, ast.Name) else getattr(kind, "attr", "")
            if name in _IMPORT_ERRORS:
                return True
    return False


def _dynamic_import_target(node: ast.Call) -> str | None:
    """``importlib.import_module("x")`` / ``import_module("x")`` / ``__import__("x")``."""
    func = node.func
    name = (
        func.id
        if isinstance(func, ast.Name)
        else func.attr
        if isinstance(func, ast.Attribute)
        else ""
    )
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


class _Collector(ast.NodeVisitor):
    def __init__(self, path: Path, module: str, is_package: bool) -> None:
        self.path = path
        self.module = module
        self.is_package = is_package
        self.type_checking = 0
        self.optional = 0
        self.found: list[ImportUse] = []

    def _add(self, module: str, names: tuple[str, ...], line: int) -> None:
        self.found.append(
            ImportUse(
                module=module,
                names=names,
                path=self.path,
                line=line,
                type_checking=self.type_checking > 0,
                optional=self.optional > 0,
            )
        )

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking_test(node.test):
            self.type_checking += 1
            for child in node.body:
                self.visit(child)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        guarded = _catches_import_error(node)
        if guarded:
            self.optional += 1
        for child in node.body:
            self.visit(child)
        if guarded:
            self.optional -= 1
        rest: list[ast.AST] = [*node.handlers, *node.orelse, *node.finalbody]
        for other in rest:
            self.visit(other)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, (), node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = _resolve_relative(node.module, node.level, self.module, self.is_package)
        if module == "__future__":
            return
        self._add(module, tuple(alias.name for alias in node.names), node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        target = _dynamic_import_target(node)
        if target is not None:
            self._add(target, (), node.lineno)
        self.generic_visit(node)


def imports_in_file(path: Path, root: Path) -> list[ImportUse]:
    """Every import in ``path`` (a file under ``root``, the directory that is on ``sys.path``)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise ImportSyntaxError(f"{path}: does not parse ({exc.msg}, line {exc.lineno})") from exc
    except UnicodeDecodeError as exc:
        raise ImportSyntaxError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    module, is_package = module_name_of(path, root)
    collector = _Collector(path, module, is_package)
    collector.visit(tree)
    return collector.found


def _bound_names(node: ast.stmt) -> list[str]:
    """Names a top-level statement binds (the forms a handler is defined by)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return [node.target.id] if isinstance(node.target, ast.Name) else []
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [alias.asname or alias.name.split(".")[0] for alias in node.names]
    return []


def defines_name(path: Path, name: str) -> bool:
    """Whether a module binds ``name`` at top level (``def``, assignment or import alias)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return any(name in _bound_names(node) for node in tree.body)


def python_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield path
