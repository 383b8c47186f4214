"""Finding servers and credentials in a running lab's info (`--lab`), for every `yubin` command.

The lab info file is `<lab dir>/lab-info.json` (lab dir: `YUBIN_LAB_DIR`, default `./lab`), or the file
named by `--lab-info` / `YUBIN_LAB_INFO` (the docker compose lab writes one too).
"""

import argparse
import os
from pathlib import Path
from typing import Any

from yubin.cli.errors import CliError, ExitCode
from yubin.lab.config import default_lab_dir
from yubin.lab.info import LabNotRunning, read_info

LAB_INFO_ENV = "YUBIN_LAB_INFO"


def add_lab_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("lab")
    group.add_argument(
        "--lab", action="store_true", help="take servers and passwords from the running lab (yubin lab info)"
    )
    group.add_argument(
        "--lab-info",
        type=Path,
        default=None,
        help=f"lab info file (default: ${LAB_INFO_ENV}, else <lab dir>/lab-info.json; lab dir: $YUBIN_LAB_DIR or ./lab)",
    )


def lab_info_path(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    if os.environ.get(LAB_INFO_ENV):
        return Path(os.environ[LAB_INFO_ENV])
    return default_lab_dir() / "lab-info.json"


def load_lab(explicit: Path | None) -> dict[str, Any]:
    try:
        return read_info(lab_info_path(explicit))
    except LabNotRunning as exc:
        raise CliError(str(exc), ExitCode.NO_LAB) from exc


def site_of(info: dict[str, Any], address_or_domain: str) -> dict[str, Any]:
    domain = address_or_domain.rpartition("@")[2].lower()
    try:
        return info["sites"][domain]
    except KeyError:
        known = ", ".join(info["sites"])
        raise CliError(f"{domain!r} is not a site of the lab (sites: {known})", ExitCode.USAGE) from None


def user_password(site: dict[str, Any], address: str) -> str | None:
    users = {name.lower(): password for name, password in site.get("users", {}).items()}
    return users.get(address.lower())


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, default_port
    try:
        return host, int(port)
    except ValueError:
        raise CliError(f"bad HOST:PORT {value!r}", ExitCode.USAGE) from None
