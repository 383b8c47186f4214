#!/usr/bin/env bash
# `make test-compose`: build the images, bring the compose lab up, run the end-to-end tests against it,
# bring it down (`down -v`). With CI=true (CI, or any machine without a registry, like CI's) it first
# installs Debian's docker.io/docker-compose/debootstrap/iptables if missing, starts a Docker engine if
# none runs (and stops that one afterwards, by its PID), builds the base images locally and uses the
# CI-only override infra/ci/docker-compose.ci.yml (see docs/compose.md, "make test-compose and CI").
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
start=$SECONDS
phase() { echo "test-compose: [$((SECONDS - start)) s] $*"; }

ci=${CI:-false}
project=yubintest
state=$(mktemp -d /tmp/yubin-compose.XXXXXX)
files=(-f docker-compose.yml)

if [ "$ci" = true ]; then
    need=()
    command -v dockerd >/dev/null || need+=(docker.io)
    command -v docker-compose >/dev/null || need+=(docker-compose)
    command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
    command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || need+=(iptables)
    if [ ${#need[@]} -gt 0 ]; then
        phase "installing ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    files+=(-f infra/ci/docker-compose.ci.yml)
    # Debian's engine has no buildx: compose v1 and `docker build` use the classic builder.
    export COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0
fi

# The e2e suite's short timers and cheap password hashes (the native e2e lab gets the same ones).
.venv/bin/python -m tests.compose.e2e_override >"$state/e2e.override.yml"
files+=(-f "$state/e2e.override.yml")

if [ "$ci" != true ] && docker compose version >/dev/null 2>&1; then
    compose=(docker compose -p "$project" "${files[@]}")
else
    compose=(docker-compose -p "$project" "${files[@]}")
    # Compose v1 gives up on an engine call after 60 s, which a loaded machine's engine can take.
    export COMPOSE_HTTP_TIMEOUT=${COMPOSE_HTTP_TIMEOUT:-300}
fi

lab_up=false
cleanup() {
    status=$?
    set +e
    if [ "$lab_up" = true ]; then
        if [ $status -ne 0 ]; then
            "${compose[@]}" ps
            "${compose[@]}" logs --no-color --tail=40 >"$state/compose.log" 2>&1
            echo "test-compose: last log lines of every service:"
            cat "$state/compose.log"
        fi
        phase "down -v"
        # Again if need be: on a loaded machine (seen: load 85 on 2 cores) compose's API calls time out and
        # leave containers running, whose host ports the next lab needs.
        for _ in 1 2; do
            "${compose[@]}" down -v --remove-orphans >"$state/down.log" 2>&1 && break
        done || { echo "test-compose: down -v failed:"; tail -n 20 "$state/down.log"; }
    fi
    [ "$ci" = true ] && infra/ci/dockerd.sh stop "$state/dockerd.pid"
    rm -rf "$state"
    phase "done (exit $status)"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$ci" = true ]; then
    infra/ci/dockerd.sh start "$state/dockerd.pid"
    phase "base images"
    infra/ci/base-images.sh 2> >(grep -v -i -E 'deprecated|buildkit|environment-variable|^\s*$' >&2)
fi

# Fresh secrets for this run, handed to compose through the environment (never written to ./.env).
set -a
# shellcheck disable=SC1090
. <(infra/docker/gen-env.sh)
set +a

phase "building the image"
# Every Yubin service runs the same image: building it once (through the one-shot `tls` service) is enough.
"${compose[@]}" build tls >"$state/build.log" 2>&1 || { cat "$state/build.log"; exit 1; }

phase "up"
lab_up=true
"${compose[@]}" up -d --no-build >"$state/up.log" 2>&1 || { cat "$state/up.log"; exit 1; }

phase "waiting for every service to be healthy and the sites provisioned"
# Healthchecked containers healthy, one-shot ones (tls, provision-*) exited 0, the others running.
ready() {
    local ids pending=0
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$project")
    [ -n "$ids" ] || return 1
    while read -r name status health code restart; do
        case "$restart:$status:$health" in
        no:exited:*)
            if [ "$code" != 0 ]; then
                echo "test-compose: $name exited with $code" >&2
                return 2
            fi ;;
        *:running:healthy | *:running:none) ;;
        *) pending=$((pending + 1)) ;;
        esac
    done < <(docker inspect --format \
        '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}}' \
        $ids)
    [ $pending -eq 0 ]
}
# 240 s is plenty on a quiet machine (it is healthy in about a minute); one busy with other work needs more.
health_wait=${COMPOSE_HEALTH_WAIT_S:-600}
# wait_healthy WHAT: until every container is healthy (`ready`), at most $health_wait s; exits on failure.
wait_healthy() {
    deadline=$((SECONDS + health_wait))
    until ready; do
        [ $? -eq 2 ] && exit 1
        if [ $SECONDS -ge $deadline ]; then
            echo "test-compose: $1 did not become healthy within $health_wait s" >&2
            exit 1
        fi
        sleep 1
    done
}
wait_healthy "the lab"

phase "lab up; writing its lab-info"
tls=$(docker ps -aq --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=tls" | head -n1)
docker cp "$tls:/var/lib/yubin/tls/cert.pem" "$state/cert.pem"
.venv/bin/python infra/docker/compose_lab_info.py "$state/lab-info.json" "$state/cert.pem" -- "${compose[@]}"

# `front` (HAProxy) has no healthcheck (nothing to run one with in its image): wait until it has found the
# replicas behind it, i.e. each site's admin API answers through it.
for site in alpha.test beta.test; do
    admin=$(.venv/bin/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["sites"][sys.argv[2]]["admin"])' \
        "$state/lab-info.json" "$site")
    until curl -sf --max-time 2 "$admin/healthz" >/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "test-compose: $admin does not answer" >&2; exit 1; }
        sleep 0.5
    done
done

if [ "${COMPOSE_E2E:-true}" = true ]; then
    phase "end-to-end tests against the compose lab"
    YUBIN_E2E_LAB_INFO="$state/lab-info.json" .venv/bin/pytest -q -p no:cacheprovider \
        -m "not native_only and not compose_scaled" tests/compose tests/e2e ${PYTEST_ARGS:-}
fi

# The scaled scenario (tests/compose/test_scaled_site.py, docs/scaling.md): every service of alpha.test that
# scales behind the front or through its stream group, several times, one replica of each killed under load.
# Hook for the SMTP listeners: once submission and MX sit behind the front (no published port, no fixed
# address of their own), add e.g. submission-alpha=2,mx-alpha=2 here; the test kills one replica of each
# service named and checks the others carried on.
scale=${COMPOSE_SCALE:-relay-alpha=3,delivery-alpha=3,pop3-alpha=2,auth-alpha=2}
if [ -n "$scale" ]; then
    phase "scaling alpha.test: $scale"
    scale_args=() scaled=()
    for pair in ${scale//,/ }; do
        scale_args+=(--scale "$pair")
        scaled+=("${pair%%=*}")
    done
    # --no-deps and the services named: nothing else is recreated or started again (the one-shot tls and
    # provision containers stay exited).
    "${compose[@]}" up -d --no-build --no-deps "${scale_args[@]}" "${scaled[@]}" >"$state/scale.log" 2>&1 ||
        { cat "$state/scale.log"; exit 1; }
    # Longer than the first start's wait: a machine busy with other work (seen: load 60 on 2 cores) takes
    # minutes to start six more Python services.
    wait_healthy "the scaled lab"
    phase "scaled scenario: load while one replica of each is killed"
    YUBIN_E2E_LAB_INFO="$state/lab-info.json" YUBIN_COMPOSE_PROJECT="$project" YUBIN_COMPOSE_SCALE="$scale" \
        .venv/bin/pytest -q -s -p no:cacheprovider -m compose_scaled tests/compose/test_scaled_site.py
fi
