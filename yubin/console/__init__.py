"""The web console: a live map of both sites, message timelines, queues, faults and a send form.

Its own service (`python -m yubin.console`): the server holds each site's admin token, talks to the sites'
admin APIs and streams their trace events to the page; the browser only ever holds a session cookie.
See docs/console.md.
"""
