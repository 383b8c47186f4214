"""The user-auth service: users and domains in Redis, a REST admin API, and the internal API the mail
services use to check logins and recipients. Start with `python -m services.auth`; see app.py."""
