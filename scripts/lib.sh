# Shared by scripts/cross-check and scripts/wine-smoke (sourced, not run).

section() { printf '\n==> %s\n' "$*"; }

# need_apt CMD PACKAGE...: installs the Debian packages when CMD is missing
# (as root, or through sudo). Fails with a hint when that is not possible;
# $skip_hint names the variable that skips the caller.
need_apt() {
    local cmd=$1
    shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    section "Installing $* (for $cmd)"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "error: $cmd is missing and neither root nor sudo is available." >&2
            echo "       Install $* (or set ${skip_hint:-the skip variable} to skip this)." >&2
            exit 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: $cmd is missing and apt-get is not available: install $* by hand" >&2
        echo "       (or set ${skip_hint:-the skip variable} to skip this)." >&2
        exit 1
    fi
    # Without package lists (a fresh machine) the first try fails quietly.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 || {
        "${sudo[@]}" apt-get update >/dev/null
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "$@" >/dev/null
    }
}

# need_target TRIPLE: the target's std, for cross builds and lints.
need_target() {
    if ! rustup target list --installed | grep -qx "$1"; then
        section "rustup target add $1"
        rustup target add "$1"
    fi
}
