"""`yubin users` / `yubin domains` against the real admin API, and what a user's state means for mail."""

import json
import secrets

from tests.e2e.conftest import Lab
from tests.e2e.mail import yubin

BOB = "bob@beta.test"


def test_user_lifecycle_through_the_admin_api(lab: Lab) -> None:
    domains = yubin(lab, "domains", "list", "--lab", "--site", "alpha.test").stdout.decode().split()
    assert "alpha.test" in domains

    carol = f"carol-{secrets.token_hex(3)}@alpha.test"
    added = json.loads(yubin(lab, "users", "add", carol, "--lab", "--json").stdout)
    password = added["password"]
    assert added["address"] == carol and "hash" not in json.dumps(added)

    sent = yubin(lab, "send", "--lab", "--from", carol, "--to", BOB, "--password", password, "hi from carol")
    assert b"queued as" in sent.stdout

    wrong = yubin(
        lab, "send", "--lab", "--from", carol, "--to", BOB, "--password", "not-her-password", "x", check=False
    )
    assert wrong.returncode == 4, wrong.stderr

    yubin(lab, "users", "set", carol, "--disable", "--lab")
    shown = json.loads(yubin(lab, "users", "show", carol, "--lab", "--json").stdout)
    assert shown["enabled"] is False
    disabled = yubin(
        lab, "send", "--lab", "--from", carol, "--to", BOB, "--password", password, "x", check=False
    )
    assert disabled.returncode == 4, disabled.stderr

    yubin(lab, "users", "delete", carol, "--lab")
    gone = yubin(lab, "users", "show", carol, "--lab", check=False)
    assert gone.returncode == 5 and b"404" in gone.stderr


def test_unknown_site_and_missing_server_are_usage_errors(lab: Lab) -> None:
    assert yubin(lab, "fetch", "--lab", "--user", "carol@gamma.test", check=False).returncode == 2
    assert yubin(lab, "send", "--from", "a@alpha.test", "--to", BOB, "x", check=False).returncode == 2
