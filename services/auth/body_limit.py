"""An ASGI middleware that refuses request bodies over a bound before any route sees them.

A body declared too large (`Content-Length`) is answered 413 at once: the app is never called and not one
byte of the body is read (so a client that sent `Expect: 100-continue` never gets the 100 and never
uploads it). A body without a length (chunked) is counted as it arrives and refused as soon as it passes
the bound, so at most the bound plus one read is ever held. Only a body that is complete and within the
bound reaches the app, replayed in one piece: a route that does not read its body (a DELETE, say) can
not run its side effects and then have its answer replaced by the 413.

Plain ASGI, so it does not depend on the FastAPI or Starlette version: FastAPI's own `max_body_size`
exists only in recent releases (older ones silently ignore the keyword), and Starlette's limiter answers
in plain text, only once a route reads the body.
"""

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body was complete: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: http.disconnect when the client goes away

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is not read, so this connection cannot carry another request.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
