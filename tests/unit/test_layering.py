"""The services share `shared/`; the tools (`yubin/`: the client, the lab runner) sit on top and stay out.

A service importing a tool would ship the lab's harness into every container and tie the mail path to
code that is free to change with the lab; `shared/` holds only what services import.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = "yubin"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def tool_imports(package: str) -> dict[str, set[str]]:
    offenders: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = {m for m in imported_modules(path) if m == TOOLS or m.startswith(TOOLS + ".")}
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    return offenders


def test_no_service_imports_the_tools() -> None:
    assert tool_imports("services") == {}


def test_shared_does_not_import_the_tools() -> None:
    assert tool_imports("shared") == {}


def test_the_check_sees_an_import_of_the_tools(tmp_path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom yubin.lab.info import write_info\nimport yubin.cli\n")
    assert imported_modules(module) >= {"yubin.lab.info", "yubin.cli"}
