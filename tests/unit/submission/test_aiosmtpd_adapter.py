"""The aiosmtpd private names the session relies on still exist, in the form the adapter expects.

An aiosmtpd upgrade that renames or reshapes one of them fails here, naming it; and no module of the
package other than the adapter may touch an aiosmtpd private name (or define one of its own that
shadows one), so this list stays complete.
"""

import ast
import asyncio
import inspect
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP

from services.submission import aiosmtpd_adapter
from services.submission.aiosmtpd_adapter import PRIVATE_NAMES, PrivateName
from tests.fixtures.memory_transport import MemoryTransport

PACKAGE = Path(aiosmtpd_adapter.__file__).parent


def connected_instance_attributes() -> set[str]:
    """The attributes a plain aiosmtpd SMTP has once a client is connected."""

    async def connect() -> set[str]:
        smtp = SMTP(object(), hostname="mx.example", ident="test")
        transport = MemoryTransport(smtp)
        smtp.connection_made(transport)
        await asyncio.sleep(0)
        names = set(vars(smtp))
        transport.close()
        await asyncio.sleep(0)
        return names

    return asyncio.run(connect())


INSTANCE_ATTRIBUTES = connected_instance_attributes()
AIOSMTPD_NAMES = {name for name in set(dir(SMTP)) | INSTANCE_ATTRIBUTES if not name.startswith("__")}


@pytest.mark.parametrize("private", PRIVATE_NAMES, ids=lambda p: p.name)
def test_the_private_name_exists_in_the_expected_form(private: PrivateName) -> None:
    if private.kind == "attribute":
        assert private.name in INSTANCE_ATTRIBUTES, (
            f"aiosmtpd no longer sets SMTP.{private.name} (needed since {private.since}: {private.why})"
        )
        return
    method = getattr(SMTP, private.name, None)
    assert method is not None, f"aiosmtpd no longer has SMTP.{private.name} ({private.why})"
    assert inspect.iscoroutinefunction(method) == (private.kind == "coroutine method"), (
        f"SMTP.{private.name} is no longer a {private.kind}"
    )
    parameters = tuple(inspect.signature(method).parameters)
    assert parameters == private.parameters, (
        f"SMTP.{private.name} now takes {parameters}, the adapter passes {private.parameters}"
    )


def test_the_adapter_overrides_or_reads_only_listed_names() -> None:
    listed = {p.name for p in PRIVATE_NAMES}
    used = private_attributes(PACKAGE / "aiosmtpd_adapter.py") & AIOSMTPD_NAMES
    assert used == listed


def private_attributes(path: Path) -> set[str]:
    """Every `_name` a module reads, assigns or defines as a method (dunder names aside)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


@pytest.mark.parametrize(
    "module", sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "aiosmtpd_adapter.py")
)
def test_no_other_module_touches_an_aiosmtpd_private_name(module: str) -> None:
    clashes = private_attributes(PACKAGE / module) & AIOSMTPD_NAMES
    assert not clashes, (
        f"{module} uses or shadows aiosmtpd's private {sorted(clashes)}: go through aiosmtpd_adapter.py"
    )
