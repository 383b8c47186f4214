"""The README's settings table is the generated one, and every setting is documented."""

from pathlib import Path

from shared.config.reference import BEGIN, END, render, settings_classes

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_settings_table_is_current() -> None:
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == render(), "run `python -m shared.config.reference` and paste it into README.md"


def test_every_setting_has_a_description() -> None:
    for service, cls in settings_classes():
        for name, field in cls.model_fields.items():
            assert field.description, f"{service}: {name} has no description"
