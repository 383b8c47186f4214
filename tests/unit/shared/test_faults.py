"""Fault specs (shared/faults.py): what fits each kind, the reply grammar, and which names a DNS fault
covers. (The API and Redis side: tests/integration/auth/test_faults_api.py.)"""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.faults import Fault, FaultKind, FaultSpec, FaultStage, valid_reply


@pytest.mark.parametrize(
    ("reply", "valid"),
    [
        ("451 4.3.0 lab fault", True),
        ("550 5.7.1 go away", True),
        ("421 lab fault without enhanced code", True),
        ("451 5.3.0 class mismatch", False),
        ("250 2.0.0 not a failure", False),
        ("461 4.3.0 no such code", False),
        ("451", False),
        ("451 4.3.0 tab\there", False),
        ("451 4.3.0 déjà", False),
    ],
)
def test_reply_grammar(reply: str, valid: bool) -> None:
    assert valid_reply(reply) is valid


def test_stage_defaults_to_data_for_mx_kinds_and_is_none_for_dns() -> None:
    assert FaultSpec(kind=FaultKind.DROP, expires_in_s=60).stage is FaultStage.DATA
    assert FaultSpec(kind=FaultKind.DNS_SERVFAIL, domain="beta.test", expires_in_s=60).stage is None


def test_fields_of_another_kind_are_refused() -> None:
    with pytest.raises(ValidationError, match="domain does not apply to a delay fault"):
        FaultSpec(kind=FaultKind.DELAY, delay_s=1, domain="beta.test", expires_in_s=60)


@pytest.mark.parametrize(
    ("name", "hit"),
    [("beta.test", True), ("MX.Beta.Test.", True), ("alphabeta.test", False), ("test", False)],
)
def test_a_dns_fault_covers_its_domain_and_names_under_it(name: str, hit: bool) -> None:
    now = datetime.now(UTC)
    fault = Fault(
        id="0" * 16, kind=FaultKind.DNS_SERVFAIL, share=1, domain="beta.test", created_at=now, expires_at=now
    )
    assert fault.hits_name(name) is hit
