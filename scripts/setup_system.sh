#!/bin/sh
# System packages the kit uses beyond Python: PostgreSQL 15 (a shared course gradebook
# for several graders, and the tests that run a throw-away server), Chromium (headless
# browser tests) and bubblewrap (kernel sandbox without root).
#
#   scripts/setup_system.sh          install what is missing (as root, with apt), else report it
#   scripts/setup_system.sh --check  only report; exit 1 when something is missing
#
# Idempotent and quiet: prints nothing and returns at once when everything is present.
# As a non-root user it never installs: it names the missing packages and exits 0, so
# `make` goes on (tests that need a package skip and say why).
set -eu

check_only=0
[ "${1:-}" = "--check" ] && check_only=1

# package -> a file the kit uses from it
missing=""
[ -x /usr/lib/postgresql/15/bin/initdb ] && [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || missing="$missing postgresql"
{ command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; } || missing="$missing chromium"
command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
missing="${missing# }"

[ -z "$missing" ] && exit 0

if [ "$check_only" = 1 ]; then
    echo "setup_system: missing Debian packages: $missing" >&2
    exit 1
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_system: missing Debian packages: $missing" >&2
    echo "setup_system: install them as root:  apt-get install -y $missing   (the tests that need them are skipped)" >&2
    exit 0
fi

echo "setup_system: installing $missing (apt-get)"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be empty in a fresh container: update once, then install.
if ! apt-get install -y -qq $missing >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq $missing >/dev/null
fi
# The postgresql package starts a cluster service where an init system runs one; the kit
# only needs the binaries (tests start their own server), so nothing else is configured.
echo "setup_system: installed $missing"
