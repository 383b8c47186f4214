"""Who may use the console: a login with the console password or a site's admin token, then a session.

The session id travels in a cookie the page's script cannot read (HttpOnly) and the browser sends only
with requests from the console's own pages (SameSite=Strict). Actions must also carry a header a form on
another site cannot set (`X-Yubin-Console`), so no other page can make the browser act for the user.
"""

import hmac
import secrets
import time
from dataclasses import dataclass, field

COOKIE = "yubin_console"
CSRF_HEADER = "x-yubin-console"
MAX_SECRET_BYTES = 512
# Open sessions are capped: logging in again and again must not fill the server's memory.
MAX_SESSIONS = 1000


@dataclass
class Sessions:
    secrets_: list[str]
    ttl_s: float
    open: dict[str, float] = field(default_factory=dict)
    """session id → expiry (monotonic seconds)"""

    def check_secret(self, candidate: str) -> bool:
        if not candidate or len(candidate.encode()) > MAX_SECRET_BYTES:
            return False
        # Constant time, and every secret compared: which one matched must not show in the answer time.
        matched = False
        for secret in self.secrets_:
            matched |= hmac.compare_digest(candidate.encode(), secret.encode())
        return matched

    def create(self) -> str:
        now = time.monotonic()
        self.open = {sid: until for sid, until in self.open.items() if until > now}
        while len(self.open) >= MAX_SESSIONS:
            self.open.pop(next(iter(self.open)))
        sid = secrets.token_urlsafe(32)
        self.open[sid] = now + self.ttl_s
        return sid

    def valid(self, sid: str | None) -> bool:
        if not sid:
            return False
        until = self.open.get(sid)
        if until is None:
            return False
        if until <= time.monotonic():
            self.open.pop(sid, None)
            return False
        return True

    def end(self, sid: str | None) -> None:
        if sid:
            self.open.pop(sid, None)
