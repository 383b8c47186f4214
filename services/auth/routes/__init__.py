"""HTTP routes: admin API (/v1), internal API for the mail services (/internal/v1), health."""
