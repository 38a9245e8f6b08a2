"""The package layout: imports go one way through the stages, and no folder grows past 12 modules.

Every module of `src/betcycle/` belongs to the stage named by its first folder (top-level modules are listed
in TOP_LEVEL). A module may import its own stage or an earlier one, never a later one: a new need for a later
stage means the function belongs earlier. Every import counts, including the ones inside functions
(a lazy import may save start-up time; it must still respect the order) and the `TYPE_CHECKING` ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import write_tree

SRC = Path(__file__).resolve().parent.parent / "src"

# The stage order (docs/architecture.md): each stage may import itself and the stages before it.
STAGES = (
    "errors",
    "model",
    "iac",
    "render",
    "policy",
    "validate",
    "diff",
    "aws",
    "release",
    "formats",
    "commands",
    "cli",
)
# Modules directly under betcycle/ and their stage; everything else is named by its subpackage.
TOP_LEVEL = {
    "__init__": "errors",
    "__version__": "errors",
    "errors": "errors",
    "cli": "cli",
    "__main__": "cli",
}
MAX_MODULES = 12


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stage_of(module: str) -> str | None:
    """The stage of a dotted name under betcycle (a module, or a name imported from the package itself)."""
    parts = module.split(".")
    if len(parts) == 1:
        return TOP_LEVEL["__init__"]
    head = parts[1]
    if head in TOP_LEVEL:
        return TOP_LEVEL[head]
    return head if head in STAGES else None


def imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of every betcycle module a module imports, at any depth of the file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "betcycle"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "betcycle":
                continue
            # `from betcycle import render` names a subpackage: its stage is the name's, not the package's.
            found += [
                (node.lineno, f"{target}.{a.name}" if target == "betcycle" else target) for a in node.names
            ]
    return found


def violations(src: Path) -> list[str]:
    problems: list[str] = []
    for path in sorted((src / "betcycle").rglob("*.py")):
        module = module_name(path, src)
        own = stage_of(module)
        rel = path.relative_to(src)
        if own is None:
            problems.append(
                f"{rel}: {module} belongs to no stage (add its folder to STAGES in {Path(__file__).name})"
            )
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, target in imported(tree, module, path.name == "__init__.py"):
            theirs = stage_of(target)
            if theirs is None:
                problems.append(f"{rel}:{line}: imports {target}, which belongs to no stage")
            elif STAGES.index(theirs) > STAGES.index(own):
                problems.append(
                    f"{rel}:{line}: {module} (stage {own}) imports {target} (later stage {theirs})"
                )
    return problems


def crowded_folders(src: Path) -> list[str]:
    folders = [src / "betcycle", *sorted(p for p in (src / "betcycle").rglob("*") if p.is_dir())]
    crowded = []
    for folder in folders:
        count = len(list(folder.glob("*.py")))
        if count > MAX_MODULES:
            crowded.append(
                f"{folder.relative_to(src)}: {count} modules (at most {MAX_MODULES}, __init__.py included)"
            )
    return crowded


def test_no_stage_imports_a_later_one() -> None:
    assert violations(SRC) == []


def test_no_folder_holds_more_than_12_modules() -> None:
    assert crowded_folders(SRC) == []


def test_every_stage_folder_exists_and_holds_code() -> None:
    for stage in STAGES:
        if stage not in TOP_LEVEL.values():
            assert (SRC / "betcycle" / stage / "__init__.py").is_file(), stage


def test_a_later_import_is_named_with_its_module_and_line(tmp_path: Path) -> None:
    src = write_tree(
        tmp_path,
        {
            "betcycle/__init__.py": "",
            "betcycle/errors.py": "",
            "betcycle/model/__init__.py": "",
            "betcycle/model/repo.py": """\
                from betcycle.errors import UserError
                from betcycle.model import yamlio

                def load():
                    from betcycle.render import engine  # hidden in a function: still counted
                """,
            "betcycle/model/yamlio.py": "from . import repo\nfrom ..diff import engine\n",
            "betcycle/render/__init__.py": "",
            "betcycle/render/engine.py": "from betcycle import cli, model\n",
            "betcycle/cli.py": "import betcycle.render.engine\n",
        },
    )
    assert violations(src) == [
        "betcycle/model/repo.py:5: betcycle.model.repo (stage model) imports betcycle.render (later stage render)",
        "betcycle/model/yamlio.py:2: betcycle.model.yamlio (stage model) imports betcycle.diff (later stage diff)",
        "betcycle/render/engine.py:1: betcycle.render.engine (stage render) imports betcycle.cli (later stage cli)",
    ]


def test_a_folder_outside_the_stages_is_reported(tmp_path: Path) -> None:
    src = write_tree(tmp_path, {"betcycle/__init__.py": "", "betcycle/extras/thing.py": ""})
    assert violations(src) == [
        "betcycle/extras/thing.py: betcycle.extras.thing belongs to no stage (add its folder to STAGES in test_layering.py)"
    ]


def test_a_folder_of_13_modules_is_reported(tmp_path: Path) -> None:
    files = {"betcycle/__init__.py": "", "betcycle/model/__init__.py": ""}
    files |= {f"betcycle/model/m{i}.py": "" for i in range(12)}
    assert crowded_folders(write_tree(tmp_path, files)) == [
        "betcycle/model: 13 modules (at most 12, __init__.py included)"
    ]
