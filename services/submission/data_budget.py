"""One listener's budget of memory for message data, shared by all its sessions.

Each session holds a message in memory from DATA until it is stored, up to `max_message_size`; a hundred
sessions could hold a hundred of those. A session therefore reserves what it holds from this budget as
the message grows, in steps of `STEP` octets, and gives it all back when the message is stored or refused.
When the budget cannot give more, the message is refused with a temporary error and its data dropped,
so memory stays bounded and the other sessions go on.
"""

import logging

log = logging.getLogger(__name__)

STEP = 64 * 1024
"""Reserve in steps, not per line: a 25 MiB message asks about 400 times, not 300 000."""


class DataBudget:
    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0

    def reservation(self) -> "Reservation":
        return Reservation(self)

    def take(self, octets: int) -> bool:
        if self.in_use + octets > self.total:
            return False
        self.in_use += octets
        return True

    def give_back(self, octets: int) -> None:
        self.in_use -= octets


class Reservation:
    """What one message holds of the budget."""

    def __init__(self, budget: DataBudget) -> None:
        self._budget = budget
        self.held = 0

    def cover(self, octets: int) -> bool:
        """Make the reservation at least `octets`; False (holding what it held) when the budget is short."""
        if octets <= self.held:
            return True
        wanted = max(octets - self.held, STEP)
        if not self._budget.take(wanted):
            # The last step may not fit while the exact amount still does.
            wanted = octets - self.held
            if not self._budget.take(wanted):
                log.warning(
                    "message data budget exhausted",
                    extra={"wanted": octets, "in_use": self._budget.in_use, "budget": self._budget.total},
                )
                return False
        self.held += wanted
        return True

    def release(self) -> None:
        self._budget.give_back(self.held)
        self.held = 0


def declared_size(mail_options: list[str]) -> int | None:
    """The `SIZE=` a client declared on MAIL FROM (RFC 1870 §6; aiosmtpd has checked it is a number)."""
    for option in mail_options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and value.isdigit():
            return int(value)
    return None
