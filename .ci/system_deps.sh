#!/usr/bin/env bash
# System packages the real-engine tests need (tests/upstreams/), installed from Debian when missing.
#
#   * PostgreSQL server binaries (initdb, pg_ctl, postgres under /usr/lib/postgresql/<major>/bin)
#   * Chromium (/usr/bin/chromium), driven by Playwright for Python with executable_path
#   * Node.js and npm (for .ci/node_deps.sh: newman, the `openai` npm package)
#   * fonts-nanum (Hangul glyphs for the Media Gateway's mock images; deploy/Dockerfile installs it too)
#
# Idempotent: checks first, runs `apt-get update` + `apt-get install` only when something is missing,
# and prints what it found or did. Fails loudly (non-zero exit) when something cannot be installed.
# Needs root (as CI and the sessions here are) or a working passwordless sudo.
set -euo pipefail

log() { printf '[system_deps] %s\n' "$*"; }
die() { printf '[system_deps] ERROR: %s\n' "$*" >&2; exit 1; }

start_s=$(date +%s)

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    SUDO=()
fi

pg_bindir() {
    # The newest installed major version's bin dir that has the server binaries, or nothing.
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    return 1
}

packages=()
if pg_bin=$(pg_bindir); then
    log "postgresql: present ($pg_bin)"
else
    log "postgresql: missing (no initdb/pg_ctl under /usr/lib/postgresql/*/bin)"
    packages+=(postgresql)
fi

if [ -x /usr/bin/chromium ]; then
    log "chromium: present (/usr/bin/chromium)"
else
    log "chromium: missing"
    # fonts-liberation: a recommended package, but without any font pages render text as boxes.
    packages+=(chromium fonts-liberation)
fi

if command -v node >/dev/null 2>&1; then
    log "node: present ($(command -v node) $(node --version))"
else
    log "node: missing"
    packages+=(nodejs)
fi
if command -v npm >/dev/null 2>&1; then
    log "npm: present ($(command -v npm) $(npm --version 2>/dev/null || echo '?'))"
else
    log "npm: missing"
    packages+=(npm)
fi

if [ -f /usr/share/fonts/truetype/nanum/NanumGothicBold.ttf ]; then
    log "fonts-nanum: present"
else
    log "fonts-nanum: missing"
    packages+=(fonts-nanum)
fi

if [ "${#packages[@]}" -eq 0 ]; then
    log "nothing to install ($(( $(date +%s) - start_s ))s)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
    die "need root (or passwordless sudo) to install: ${packages[*]}"
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${packages[*]}"

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -qq --no-install-recommends -o DPkg::Lock::Timeout=600
          -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

if [[ " ${packages[*]} " == *" postgresql "* ]] && [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    # The tests make their own throw-away clusters: skip the Debian package's default 'main' cluster
    # (saves time and disk; a cluster can still be made later with pg_createcluster).
    "${SUDO[@]}" mkdir -p /etc/postgresql-common/createcluster.d
    printf 'create_main_cluster = false\n' \
        | "${SUDO[@]}" tee /etc/postgresql-common/createcluster.d/50-no-main-cluster.conf >/dev/null
    log "postgresql: the package's default 'main' cluster will not be created"
fi

log "apt-get update"
update_s=$(date +%s)
"${SUDO[@]}" apt-get update -qq -o DPkg::Lock::Timeout=600 || die "apt-get update failed"
log "apt-get update done ($(( $(date +%s) - update_s ))s)"

log "apt-get install ${packages[*]}"
install_s=$(date +%s)
if ! "${SUDO[@]}" apt-get install "${apt_opts[@]}" "${packages[@]}" >/tmp/system_deps.apt.log 2>&1; then
    tail -n 40 /tmp/system_deps.apt.log >&2 || true
    die "apt-get install ${packages[*]} failed (full log: /tmp/system_deps.apt.log)"
fi
log "apt-get install done ($(( $(date +%s) - install_s ))s)"

# Check that what we needed is really there now.
pg_bin=$(pg_bindir) || die "postgresql installed but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
[ -x /usr/bin/chromium ] || die "chromium installed but /usr/bin/chromium is missing"
command -v node >/dev/null 2>&1 || die "node still missing"
command -v npm >/dev/null 2>&1 || die "npm still missing"

log "postgresql: $("$pg_bin/postgres" --version)"
log "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
log "node: $(node --version), npm: $(npm --version)"
log "done ($(( $(date +%s) - start_s ))s)"
