"""What the services ask of the auth service, as small interfaces.

`shared.auth_client.AuthClient` is the one real implementation of all three. They exist so a protocol
session can be run apart from the network: the fuzz tests (tests/unit/fuzz) hand the SMTP and POP3
sessions in-memory directories that keep the same contract (`VerifyRequest`'s limits, `AuthUnavailable`).
"""

from typing import Protocol

from shared.models import RecipientInfo, VerifyResult


class LoginVerifier(Protocol):
    async def verify(
        self, username: str, password: str, service: str, client_ip: str | None
    ) -> VerifyResult: ...


class RecipientDirectory(Protocol):
    async def recipient(self, address: str) -> RecipientInfo: ...


class DomainDirectory(Protocol):
    async def domains(self) -> list[str]: ...
