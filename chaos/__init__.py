"""`python -m chaos` (`make chaos`): mail through the native lab while a seeded schedule kills and pauses
its processes; then every mailbox is checked: nothing acknowledged lost, nothing delivered twice."""
