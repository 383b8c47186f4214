#!/bin/sh
# Print a .env for docker compose with fresh secrets: each site's admin and service tokens, the demo
# users' passwords and the web console's password. Keep it private; compose reads ./.env by itself.
#   infra/docker/gen-env.sh > .env && chmod 600 .env
set -eu
secret() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
cat <<ENV
# Secrets of the Yubin compose lab (made by infra/docker/gen-env.sh). Admin API: Authorization: Bearer <token>.
ALPHA_ADMIN_TOKEN=$(secret 32)
ALPHA_SERVICE_TOKEN=$(secret 32)
BETA_ADMIN_TOKEN=$(secret 32)
BETA_SERVICE_TOKEN=$(secret 32)
# Demo users: alice@alpha.test and bob@beta.test.
ALICE_PASSWORD=$(secret 12)
BOB_PASSWORD=$(secret 12)
# The web console (http://127.0.0.1:18025/); a site's admin token logs in too.
CONSOLE_PASSWORD=$(secret 12)
ENV
