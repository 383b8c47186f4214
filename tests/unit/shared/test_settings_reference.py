"""docs/settings.md's table is the generated one, every setting is documented, and the docs name no unknown variable."""

from pathlib import Path

from shared.config.reference import BEGIN, END, render, settings_classes

ROOT = Path(__file__).resolve().parents[3]
SETTINGS_PAGE = ROOT / "docs" / "settings.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_settings_page_table_is_current() -> None:
    text = SETTINGS_PAGE.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == render(), (
        "run `python -m shared.config.reference` and paste it into docs/settings.md"
    )


def test_every_setting_has_a_description() -> None:
    for service, cls in settings_classes():
        for name, field in cls.model_fields.items():
            assert field.description, f"{service}: {name} has no description"


# Variables the docs name that are not service settings: the yubin client's, the lab's and the tests' own.
CLIENT_VARIABLES = {
    "YUBIN_ADMIN_URL", "YUBIN_ADMIN_TOKEN", "YUBIN_PASSWORD", "YUBIN_LAB_DIR", "YUBIN_LAB_INFO",
    "YUBIN_E2E_LAB_INFO", "YUBIN_NAME", "YUBIN_X", "YUBIN_FUZZ_EXAMPLES", "YUBIN_CONSOLE_SCREENSHOTS",
}  # fmt: skip


def test_every_variable_the_docs_name_exists() -> None:
    import re

    from shared.config.reference import env_names
    from yubin.console.settings import ConsoleSettings

    # The web console is a tool, not a service: its settings are in docs/console.md, not settings.md.
    console = {"YUBIN_CONSOLE_" + name.upper() for name in ConsoleSettings.model_fields}
    known = {name for _, cls in settings_classes() for name in env_names(cls)} | CLIENT_VARIABLES | console
    named = {name for page in DOCS for name in re.findall(r"YUBIN_[A-Z0-9_]+", page.read_text())}
    assert named - known == set()
