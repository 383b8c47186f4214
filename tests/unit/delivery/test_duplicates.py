"""The duplicate-suppression key: which Message-IDs count as the same, and what the Redis key looks like."""

import hashlib

import pytest

from services.delivery.duplicates import claim_key, normalized_message_id


@pytest.mark.parametrize(
    "value",
    ["<a.b@example.test>", " <a.b@example.test> ", "(a comment) <a.b@example.test>", "< a.b@example.test\t>"],
)
def test_the_same_message_id_written_differently_is_the_same(value: str) -> None:
    assert normalized_message_id(value) == "a.b@example.test"


def test_case_and_content_matter() -> None:
    # The left part is the sender's opaque token: A.B and a.b may be different messages.
    assert normalized_message_id("<A.B@example.test>") != normalized_message_id("<a.b@example.test>")
    assert normalized_message_id("<1@example.test>") != normalized_message_id("<2@example.test>")


@pytest.mark.parametrize("value", [None, "", "   ", "<>", "< >"])
def test_no_message_id_means_no_suppression(value: str | None) -> None:
    assert normalized_message_id(value) is None


def test_without_brackets_the_whole_value_counts() -> None:
    assert normalized_message_id("bare@example.test") == "bare@example.test"


def test_the_key_hashes_the_message_id_and_names_the_recipient() -> None:
    digest = hashlib.sha256(b"a.b@example.test").hexdigest()
    assert claim_key("a.b@example.test", "ann@alpha.test") == f"yubin:delivery:msgid:{digest}:ann@alpha.test"
