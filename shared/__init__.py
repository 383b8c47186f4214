"""Code shared by every Yubin service: settings, models, the Redis-streams bus, the body store, clients."""
