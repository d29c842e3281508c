#!/usr/bin/env bash
# Node tools the real-engine tests use, installed from npm into a git-ignored folder:
#
#   ${PDP_CACHE_DIR:-<repo>/.cache}/node/node_modules/.bin/newman   (Postman collection runner)
#   ${PDP_CACHE_DIR:-<repo>/.cache}/node/node_modules/openai         (the official `openai` npm package)
#
# Idempotent: skips npm when the pinned versions are already there. npm's own download cache (~/.npm)
# is kept, so a fresh clone on the same machine reinstalls without downloading.
# Needs node and npm (.ci/system_deps.sh installs them when missing).
#
# Versions are pinned for the machine's Node.js 20: openai 7.x declares engines.node >= 22, so 6.x it is.
set -euo pipefail

NEWMAN_VERSION="6.2.2"
OPENAI_VERSION="6.49.0"

log() { printf '[node_deps] %s\n' "$*"; }
die() { printf '[node_deps] ERROR: %s\n' "$*" >&2; exit 1; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${PDP_CACHE_DIR:-$repo_root/.cache}"
prefix="$cache_dir/node"
start_s=$(date +%s)

command -v node >/dev/null 2>&1 || die "node not found (run .ci/system_deps.sh first)"
command -v npm >/dev/null 2>&1 || die "npm not found (run .ci/system_deps.sh first)"

mkdir -p "$prefix"
# Keep the cache folder out of git whatever the repo's .gitignore says.
[ -e "$cache_dir/.gitignore" ] || printf '# made by .ci/node_deps.sh: nothing here is committed\n*\n' >"$cache_dir/.gitignore"

installed_version() {  # installed_version NAME -> prints the version in the prefix, or nothing
    local pkg_json="$prefix/node_modules/$1/package.json"
    [ -f "$pkg_json" ] || return 0
    node -e 'process.stdout.write(String(require(process.argv[1]).version || ""))' "$pkg_json"
}

want=()
have_newman="$(installed_version newman)"
have_openai="$(installed_version openai)"
if [ "$have_newman" = "$NEWMAN_VERSION" ] && [ -x "$prefix/node_modules/.bin/newman" ]; then
    log "newman $NEWMAN_VERSION: present"
else
    log "newman: ${have_newman:-missing} (want $NEWMAN_VERSION)"
    want+=("newman@$NEWMAN_VERSION")
fi
if [ "$have_openai" = "$OPENAI_VERSION" ]; then
    log "openai $OPENAI_VERSION: present"
else
    log "openai: ${have_openai:-missing} (want $OPENAI_VERSION)"
    want+=("openai@$OPENAI_VERSION")
fi

if [ "${#want[@]}" -gt 0 ]; then
    # A package.json in the prefix keeps npm from walking up into the repo, and records the pins.
    if [ ! -f "$prefix/package.json" ]; then
        printf '{\n  "name": "pdp-ci-node-tools",\n  "private": true,\n  "description": "made by .ci/node_deps.sh"\n}\n' \
            >"$prefix/package.json"
    fi
    log "npm install ${want[*]} (node $(node --version), npm $(npm --version))"
    npm_s=$(date +%s)
    # Both pins in every install, so that re-pinning one never drops the other from package.json.
    npm install --prefix "$prefix" --save-exact --no-audit --no-fund --prefer-offline \
        --loglevel=error "newman@$NEWMAN_VERSION" "openai@$OPENAI_VERSION" \
        || die "npm install failed"
    log "npm install done ($(( $(date +%s) - npm_s ))s)"
fi

# Verify: newman runs, and openai loads from the prefix.
newman_out="$("$prefix/node_modules/.bin/newman" --version 2>&1)" || die "newman --version failed: $newman_out"
[ "$newman_out" = "$NEWMAN_VERSION" ] || die "newman --version printed '$newman_out', want $NEWMAN_VERSION"
openai_out="$(NODE_PATH="$prefix/node_modules" node -e '
const OpenAI = require("openai");
const client = new OpenAI({ apiKey: "sk-test", baseURL: "http://127.0.0.1:9/v1" });
if (typeof client.chat.completions.create !== "function") throw new Error("no chat.completions.create");
process.stdout.write(require("openai/version").VERSION);
' 2>&1)" || die "require('openai') failed: $openai_out"
[ "$openai_out" = "$OPENAI_VERSION" ] || die "openai version is '$openai_out', want $OPENAI_VERSION"

log "newman $newman_out: $prefix/node_modules/.bin/newman"
log "openai $openai_out: NODE_PATH=$prefix/node_modules"
log "done ($(( $(date +%s) - start_s ))s, $(du -sh "$prefix" | cut -f1) in $prefix)"
