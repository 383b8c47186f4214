"""The tools around the mail services: the `yubin` command (`yubin.cli`), the lab runner (`yubin.lab`).

Nothing under `services/` or `shared/` imports this package (tests/unit/test_layering.py): the services
share `shared/`; these are the client and the harness that drive them.
"""
