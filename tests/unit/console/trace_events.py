"""Trace events as the console receives them from a site's admin API, for the console's unit tests."""


def ev(site, service, event, at, queue_id, message_id="<m1@alpha.test>", ident=None, **detail):
    return {
        "id": ident,
        "site": site,
        "service": service,
        "event": event,
        "at": f"2026-01-01T12:00:{at:06.3f}+00:00",
        "queue_id": queue_id,
        "message_id": message_id,
        "detail": detail,
    }
