from pathlib import Path

import pytest

from services.auth.addresses import InvalidAddress, normalize_address, normalize_domain
from shared.maildir import mailbox_path


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("alpha.test", "alpha.test"),
        ("ALPHA.Test", "alpha.test"),
        ("alpha.test.", "alpha.test"),
        ("Bücher.test", "xn--bcher-kva.test"),
        ("xn--bcher-kva.test", "xn--bcher-kva.test"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("mx-1.sub.alpha.test", "mx-1.sub.alpha.test"),
    ],
)
def test_domains_are_lower_case_ascii(given, canonical):
    assert normalize_domain(given) == canonical


@pytest.mark.parametrize(
    "bad",
    ["", "test", "-alpha.test", "alpha-.test", "al_pha.test", "alpha..test", "a/b.test", "x" * 64 + ".test"],
)
def test_bad_domains_are_refused(bad):
    with pytest.raises(InvalidAddress):
        normalize_domain(bad)


def test_a_domain_longer_than_253_characters_is_refused():
    with pytest.raises(InvalidAddress, match="253"):
        normalize_domain(".".join(["a" * 60] * 5))


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("Bob@Alpha.TEST", "bob@alpha.test"),
        ("bob.smith+tag@alpha.test", "bob.smith+tag@alpha.test"),
        ("o'neil@Bücher.test", "o'neil@xn--bcher-kva.test"),
        (" bob@alpha.test ", "bob@alpha.test"),
    ],
)
def test_addresses_are_canonical(given, canonical):
    assert normalize_address(given) == canonical


@pytest.mark.parametrize(
    "bad",
    [
        "bob",
        "@alpha.test",
        "bob@",
        "..@alpha.test",
        ".bob@alpha.test",
        "bob.@alpha.test",
        "bo..b@alpha.test",
        '"bob smith"@alpha.test',
        "bob/../x@alpha.test",
        "bob@evil@alpha.test",
        "jürgen@alpha.test",
        "x" * 65 + "@alpha.test",
        "bob@alpha",
    ],
)
def test_addresses_that_are_not_plain_dot_atoms_are_refused(bad):
    with pytest.raises(InvalidAddress):
        normalize_address(bad)


def test_an_address_longer_than_254_characters_is_refused():
    domain = ".".join(["d" * 60] * 4) + ".test"  # 248 characters, a valid domain
    with pytest.raises(InvalidAddress, match="254"):
        normalize_address("x" * 64 + "@" + domain)


@pytest.mark.parametrize(
    "address", ["Bob@Alpha.TEST", "a.b-c+d!#$%&'*=?^_`{|}~@Bücher.test", "x" * 64 + "@alpha.test"]
)
def test_every_canonical_address_is_a_safe_maildir_path(address):
    canonical = normalize_address(address)
    local, _, domain = canonical.partition("@")
    assert mailbox_path(Path("/mail"), canonical) == Path("/mail") / domain / local
