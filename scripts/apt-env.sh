# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the scripts that fetch Debian packages (setup.sh,
# make-system-guest.sh, bench/run.sh): running as root, installing what is
# missing, the archive URI, and private apt
# configurations that leave the system's own untouched.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# apt_install_missing PKG...: installs those of the packages not installed
# yet (nothing, and no apt-get update, when all are), unless
# CALLSTACK_SKIP_APT=1.
apt_install_missing() {
    [ "${CALLSTACK_SKIP_APT:-0}" = 1 ] && return 0
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    printf 'installing %s\n' "${missing[*]}" >&2
    as_root apt-get -qq update
    DEBIAN_FRONTEND=noninteractive as_root apt-get -y -qq install "${missing[@]}" >/dev/null
}

# The archive URI of this machine's main Debian suite, read from its own apt
# configuration (deb822 .sources files first, then one-line sources.list).
debian_uri() {
    local f uri=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |$|\n)/ && !/security/ {
                     for (i = 1; i <= NF; i++) if ($i == "URIs:") { print $(i+1); exit } }' "$f")
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $3 == "bookworm" { print ($2 ~ /^\[/) ? $3 : $2; exit }' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || { printf 'cannot find the Debian archive URI in /etc/apt\n' >&2; return 1; }
    printf '%s\n' "$uri"
}

# private_apt_opts DIR [ARCH]: sets APT_OPTS to apt options using DIR's
# sources.list (written by the caller), package lists and cache; with ARCH,
# as if ARCH were the machine's architecture (no dpkg --add-architecture).
APT_OPTS=()
private_apt_opts() {
    mkdir -p "$1/lists/partial" "$1/cache/archives/partial"
    APT_OPTS=(-o "Dir::Etc::sourcelist=$1/sources.list" -o "Dir::Etc::sourceparts=-"
              -o "APT::Sandbox::User=root"
              -o "Dir::State::Lists=$1/lists" -o "Dir::Cache=$1/cache")
    if [ -n "${2:-}" ]; then
        APT_OPTS+=(-o "APT::Architecture=$2" -o "APT::Architectures=$2")
    fi
}
