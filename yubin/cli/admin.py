"""`yubin domains ...`, `yubin users ...` and `yubin aliases ...`: the auth service's REST admin API (`/v1`) over httpx.

The server is `--admin-url` with `--token` (or `$YUBIN_ADMIN_URL`, `$YUBIN_ADMIN_TOKEN`), or with `--lab`
the admin API of the site the address belongs to (`--site` for domain commands).
"""

import argparse
import getpass
import json
import os
import sys
from typing import Any
from urllib.parse import quote

import httpx

from yubin.cli.errors import CliError, ExitCode
from yubin.cli.lab_endpoints import add_lab_options, load_lab, site_of
from yubin.lab.credentials import new_password

URL_ENV = "YUBIN_ADMIN_URL"
TOKEN_ENV = "YUBIN_ADMIN_TOKEN"


def connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("admin API")
    group.add_argument("--admin-url", help=f"base URL of the admin API (default: ${URL_ENV})")
    group.add_argument("--token", help=f"admin bearer token (default: ${TOKEN_ENV})")
    group.add_argument("--site", help="with --lab: the site whose admin API to use (e.g. alpha.test)")
    group.add_argument("--json", action="store_true", help="print the API's JSON answer")
    add_lab_options(parser)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    domains = subparsers.add_parser("domains", help="manage the mail domains of a site (admin API)")
    domain_commands = domains.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = domain_commands.add_parser("list", help="list the domains")
    connection_options(p)
    p.set_defaults(handler=domains_list)
    p = domain_commands.add_parser("add", help="add a domain (with its postmaster@ and abuse@ aliases)")
    p.add_argument("name")
    p.add_argument(
        "--postmaster",
        metavar="ADDRESS",
        help="who gets the domain's postmaster@ and abuse@ mail (RFC 5321 §4.5.1, RFC 2142); "
        "without it, create those aliases yourself",
    )
    connection_options(p)
    p.set_defaults(handler=domains_add)
    p = domain_commands.add_parser("delete", help="delete a domain (refused while it has users)")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="delete it together with its users")
    connection_options(p)
    p.set_defaults(handler=domains_delete)

    users = subparsers.add_parser("users", help="manage the users (mailboxes) of a site (admin API)")
    user_commands = users.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = user_commands.add_parser("list", help="list the users")
    p.add_argument("--domain", help="only this domain's users")
    p.add_argument("--limit", type=int, help="at most this many")
    p.add_argument("--offset", type=int, help="skip this many")
    connection_options(p)
    p.set_defaults(handler=users_list)
    p = user_commands.add_parser("add", help="add a user (prints the password when generated)")
    p.add_argument("address")
    password_options(p)
    p.add_argument("--quota", type=int, metavar="BYTES", help="mailbox size limit")
    connection_options(p)
    p.set_defaults(handler=users_add)
    p = user_commands.add_parser("show", help="show one user")
    p.add_argument("address")
    connection_options(p)
    p.set_defaults(handler=users_show)
    p = user_commands.add_parser("set", help="change a user's password, state or quota")
    p.add_argument("address")
    password_options(p)
    state = p.add_mutually_exclusive_group()
    state.add_argument(
        "--enable", dest="enabled", action="store_const", const=True, help="allow logins and mail"
    )
    state.add_argument(
        "--disable", dest="enabled", action="store_const", const=False, help="refuse logins and mail"
    )
    quota = p.add_mutually_exclusive_group()
    quota.add_argument("--quota", type=int, metavar="BYTES", help="mailbox size limit")
    quota.add_argument("--no-quota", action="store_true", help="remove the size limit")
    connection_options(p)
    p.set_defaults(handler=users_set)
    p = user_commands.add_parser("delete", help="delete a user")
    p.add_argument("address")
    connection_options(p)
    p.set_defaults(handler=users_delete)

    aliases = subparsers.add_parser("aliases", help="manage the aliases of a site (admin API)")
    alias_commands = aliases.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = alias_commands.add_parser("list", help="list the aliases")
    p.add_argument("--domain", help="only this domain's aliases")
    p.add_argument("--limit", type=int, help="at most this many")
    p.add_argument("--offset", type=int, help="skip this many")
    connection_options(p)
    p.set_defaults(handler=aliases_list)
    p = alias_commands.add_parser("add", help="add an alias: its mail goes to each destination")
    p.add_argument("address")
    p.add_argument("destinations", nargs="+", metavar="DESTINATION", help="local or remote addresses")
    connection_options(p)
    p.set_defaults(handler=aliases_add)
    p = alias_commands.add_parser("show", help="show one alias")
    p.add_argument("address")
    connection_options(p)
    p.set_defaults(handler=aliases_show)
    p = alias_commands.add_parser("delete", help="delete an alias")
    p.add_argument("address")
    connection_options(p)
    p.set_defaults(handler=aliases_delete)


def password_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password", help="the password (visible in the process list; prefer the others)")
    group.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    group.add_argument("--prompt", action="store_true", help="ask for the password")


def chosen_password(args: argparse.Namespace, *, generate: bool) -> tuple[str | None, bool]:
    """(password, generated?)"""
    if args.password:
        return args.password, False
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if args.prompt:
        return getpass.getpass("new password: "), False
    return (new_password(), True) if generate else (None, False)


def client(args: argparse.Namespace, address_or_domain: str | None) -> httpx.Client:
    url = args.admin_url or os.environ.get(URL_ENV)
    token = args.token or os.environ.get(TOKEN_ENV)
    if args.lab:
        info = load_lab(args.lab_info)
        target = args.site or address_or_domain
        if target is None or target.rpartition("@")[2].lower() not in info["sites"]:
            target = args.site or next(iter(info["sites"]))
        site = site_of(info, target)
        url = url or site["admin"]
        token = token or site["admin_token"]
    if not url or not token:
        raise CliError(
            f"say which admin API: --admin-url and --token (or ${URL_ENV}, ${TOKEN_ENV}), or --lab",
            ExitCode.USAGE,
        )
    return httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=30.0)


def call(args: argparse.Namespace, target: str | None, method: str, path: str, **kwargs: Any) -> Any:
    with client(args, target) as http:
        try:
            response = http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach the admin API at {http.base_url}: {exc}", ExitCode.UNAVAILABLE
            ) from exc
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        if response.status_code == 401:
            code = ExitCode.AUTH_FAILED
        elif response.status_code >= 500:
            code = ExitCode.TEMPORARY
        else:
            code = ExitCode.REJECTED
        raise CliError(f"{method} {path}: HTTP {response.status_code}: {detail}", code)
    return response.json() if response.content else None


def output(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2) if args.json else text)
    return ExitCode.OK


def path_part(value: str) -> str:
    return quote(value, safe="@")


def domains_list(args: argparse.Namespace) -> int:
    data = call(args, None, "GET", "/v1/domains")
    names = [d["name"] if isinstance(d, dict) else d for d in domain_items(data)]
    return output(args, data, "\n".join(names) if names else "no domains")


def domain_items(data: Any) -> list[Any]:
    if isinstance(data, dict):
        for key in ("domains", "items"):
            if key in data:
                return data[key]
    return data if isinstance(data, list) else []


def domains_add(args: argparse.Namespace) -> int:
    body = {"name": args.name}
    if args.postmaster:
        body["postmaster"] = args.postmaster
    data = call(args, args.name, "POST", "/v1/domains", json=body)
    return output(
        args, data, f"added domain {data.get('name', args.name) if isinstance(data, dict) else args.name}"
    )


def domains_delete(args: argparse.Namespace) -> int:
    params = {"force": "true"} if args.force else None
    data = call(args, args.name, "DELETE", f"/v1/domains/{path_part(args.name)}", params=params)
    return output(args, data, f"deleted domain {args.name}")


def users_list(args: argparse.Namespace) -> int:
    params = {
        k: v
        for k, v in (("domain", args.domain), ("limit", args.limit), ("offset", args.offset))
        if v is not None
    }
    data = call(args, args.domain, "GET", "/v1/users", params=params)
    users = data.get("users", data.get("items", [])) if isinstance(data, dict) else data
    lines = [user_line(user) for user in users]
    return output(args, data, "\n".join(lines) if lines else "no users")


def user_line(user: dict[str, Any]) -> str:
    state = "enabled" if user.get("enabled", True) else "disabled"
    quota = f"quota {user['quota_bytes']}" if user.get("quota_bytes") is not None else "no quota"
    return f"{user['address']:<32} {state:<8} {quota}"


def users_add(args: argparse.Namespace) -> int:
    password, generated = chosen_password(args, generate=True)
    body: dict[str, Any] = {"address": args.address, "password": password}
    if args.quota is not None:
        body["quota_bytes"] = args.quota
    data = call(args, args.address, "POST", "/v1/users", json=body)
    text = f"added {data.get('address', args.address)}"
    if generated:
        text += f"\npassword: {password}"
        if args.json:
            data = {**data, "password": password}
    return output(args, data, text)


def users_show(args: argparse.Namespace) -> int:
    data = call(args, args.address, "GET", f"/v1/users/{path_part(args.address)}")
    return output(args, data, user_line(data))


def users_set(args: argparse.Namespace) -> int:
    password, _ = chosen_password(args, generate=False)
    body: dict[str, Any] = {}
    if password is not None:
        body["password"] = password
    if args.enabled is not None:
        body["enabled"] = args.enabled
    if args.no_quota:
        body["quota_bytes"] = None
    elif args.quota is not None:
        body["quota_bytes"] = args.quota
    if not body:
        raise CliError(
            "nothing to change: give --password/--prompt, --enable/--disable or --quota", ExitCode.USAGE
        )
    data = call(args, args.address, "PATCH", f"/v1/users/{path_part(args.address)}", json=body)
    return output(args, data, user_line(data) if isinstance(data, dict) and "address" in data else "updated")


def users_delete(args: argparse.Namespace) -> int:
    data = call(args, args.address, "DELETE", f"/v1/users/{path_part(args.address)}")
    return output(args, data, f"deleted {args.address}")


def alias_line(alias: dict[str, Any]) -> str:
    return f"{alias['address']:<32} → {', '.join(alias['destinations'])}"


def aliases_list(args: argparse.Namespace) -> int:
    params = {
        k: v
        for k, v in (("domain", args.domain), ("limit", args.limit), ("offset", args.offset))
        if v is not None
    }
    data = call(args, args.domain, "GET", "/v1/aliases", params=params)
    lines = [alias_line(alias) for alias in data]
    return output(args, data, "\n".join(lines) if lines else "no aliases")


def aliases_add(args: argparse.Namespace) -> int:
    body = {"address": args.address, "destinations": args.destinations}
    data = call(args, args.address, "POST", "/v1/aliases", json=body)
    return output(args, data, f"added {alias_line(data)}")


def aliases_show(args: argparse.Namespace) -> int:
    data = call(args, args.address, "GET", f"/v1/aliases/{path_part(args.address)}")
    return output(args, data, alias_line(data))


def aliases_delete(args: argparse.Namespace) -> int:
    data = call(args, args.address, "DELETE", f"/v1/aliases/{path_part(args.address)}")
    return output(args, data, f"deleted {args.address}")
