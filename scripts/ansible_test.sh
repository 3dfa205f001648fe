#!/usr/bin/env bash
# Runs ansible-test (from .venv, see scripts/setup.sh) on this collection,
# on this machine, without the internet hosts that ansible-test normally needs.
#
# Usage:
#   scripts/ansible_test.sh sanity      [ansible-test sanity args...]
#   scripts/ansible_test.sh units       [ansible-test units args...]
#   scripts/ansible_test.sh integration [ansible-test integration args...]
#   scripts/ansible_test.sh <other ansible-test command> [args...]   (passed through as is)
#
# What it does, every run (all idempotent):
#   1. Copies the git-tracked and untracked-not-ignored files of the checkout
#      into .build/ansible-test/ansible_collections/<namespace>/<name> (fresh:
#      the old copy is deleted), because ansible-test wants the collection
#      physically under ansible_collections/ and resolves symlinks. The copy
#      gets its own empty git repository: otherwise ansible-test walks up to
#      the checkout's .git, in whose eyes .build/ is ignored, and skips
#      every target.
#   2. Seeds ~/.ansible/test/cache/get_pip_<ver>.py with a small stand-in that
#      installs pip from a local wheel, since the host ansible-test downloads
#      get-pip.py from is unreachable. The wheel is fetched from PyPI once
#      (pip download) into ~/.ansible/test/cache/offline-wheels, falling back
#      to the pip wheels that the interpreters' ensurepip bundle.
#   3. Puts the real interpreter directories (python_dirs) first on PATH and
#      drops pyenv shims, which exit 127 inside ansible-test.
#   4. Runs ansible-test from inside the copy, adding per command:
#        sanity:      nothing (ansible-test installs each test's requirements
#                     from PyPI into its own venvs under ~/.ansible/test/venv,
#                     --requirements or not). Without --python, every Python
#                     that ansible-test supports (3.9-3.14) and that is on the
#                     machine is used; missing ones are skipped with a warning.
#                     Installs the shellcheck tool with apt if it is missing
#                     (ansible-test otherwise just skips that test).
#        units:       --venv (pytest & co. go into venvs that ansible-test
#                     manages, kept across runs under the copy's
#                     tests/output/.tmp/delegation), unless you pass an
#                     environment option (--local, --venv, --docker,
#                     --controller, --target, --python-interpreter). Without
#                     --python, every available supported Python is used.
#        integration: --allow-destructive (our targets create network
#                     namespaces; without it ansible-test skips targets with
#                     the "destructive" alias and exits 0). Runs on this
#                     machine from .venv ("origin" controller, no containers);
#                     runme.sh runs as the calling user (root here).
#      Boolean host flags (--venv, --local, ...) are moved to the end of the
#      arguments to dodge an ansible-test bug (see below).
#
# Results (junit, bot, coverage) land under the copy's tests/output/; the
# path is printed at the end.
#
# Environment:
#   SYSOPS_FLEET_VENV          venv holding ansible-test (default: .venv)
#   SYSOPS_FLEET_TEST_TREE     where the copy goes (default: .build/ansible-test); two runs at
#                              once (scripts/test.sh's lanes) each need their own: a run deletes
#                              the copy it finds
#   SYSOPS_FLEET_TEST_OVERLAY  a directory whose files are laid over the copy
#                              after it is made (for trying throwaway targets
#                              or modules without touching the checkout)
#   SYSOPS_FLEET_NO_SHELLCHECK=1  do not apt-get install shellcheck for the
#                              sanity "shellcheck" test when it is missing
#   SYSOPS_FLEET_FRESH_VENVS=1 drop the venvs that --venv made in earlier runs
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. "$ROOT/scripts/lib.sh"

[ $# -ge 1 ] || die "usage: scripts/ansible_test.sh sanity|units|integration|<ansible-test command> [args...]"
COMMAND="$1"
shift

VENV="${SYSOPS_FLEET_VENV:-$ROOT/.venv}"
ANSIBLE_TEST="$VENV/bin/ansible-test"
VENV_PY="$VENV/bin/python"
if [ ! -x "$ANSIBLE_TEST" ] || [ ! -x "$VENV_PY" ]; then
    die "no ansible-test in $VENV: run scripts/setup.sh first"
fi

# --- 1. the physical collection copy -----------------------------------------
galaxy_field() { sed -n "s/^$1:[[:space:]]*['\"]\{0,1\}\([A-Za-z0-9_]*\).*/\1/p" "$ROOT/galaxy.yml" | head -n1; }
NAMESPACE="$(galaxy_field namespace)"
NAME="$(galaxy_field name)"
if [ -z "$NAMESPACE" ] || [ -z "$NAME" ]; then
    die "could not read namespace/name from galaxy.yml"
fi

BUILD_ROOT="${SYSOPS_FLEET_TEST_TREE:-$ROOT/.build/ansible-test}"
COLLECTION_DIR="$BUILD_ROOT/ansible_collections/$NAMESPACE/$NAME"

list_sources() {
    # NUL-separated relative paths of the files that make up the collection.
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$ROOT" ls-files -z -co --exclude-standard
    else
        (cd "$ROOT" && find . -path ./.git -prune -o -type f -print0 -o -type l -print0 | sed -z 's|^\./||')
    fi | while IFS= read -r -d '' f; do
        case "$f" in .venv/*|.build/*|.git/*|tests/output/*) continue ;; esac
        # tracked but deleted in the work tree: skip
        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done
}

log "copying $NAMESPACE.$NAME into $COLLECTION_DIR"
# The venvs that "--venv" makes live in the copy's tests/output/.tmp/delegation;
# keep them across copies (same absolute path, so they stay valid) unless
# SYSOPS_FLEET_FRESH_VENVS=1. They hold only pip packages (pytest & co.),
# never ansible-core or the collection, which ansible-test injects per run.
DELEGATION_DIR="$COLLECTION_DIR/tests/output/.tmp/delegation"
DELEGATION_KEEP="$BUILD_ROOT/delegation-venvs"
rm -rf "$DELEGATION_KEEP"
if [ -d "$DELEGATION_DIR" ] && [ "${SYSOPS_FLEET_FRESH_VENVS:-0}" != 1 ]; then
    mv "$DELEGATION_DIR" "$DELEGATION_KEEP"
fi
rm -rf "$BUILD_ROOT/ansible_collections"
mkdir -p "$COLLECTION_DIR"
list_sources | tar --null -T - -cf - | tar -xf - -C "$COLLECTION_DIR"
if [ -d "$DELEGATION_KEEP" ]; then
    mkdir -p "$(dirname "$DELEGATION_DIR")"
    mv "$DELEGATION_KEEP" "$DELEGATION_DIR"
fi
if [ -n "${SYSOPS_FLEET_TEST_OVERLAY:-}" ]; then
    [ -d "$SYSOPS_FLEET_TEST_OVERLAY" ] || die "SYSOPS_FLEET_TEST_OVERLAY=$SYSOPS_FLEET_TEST_OVERLAY is not a directory"
    log "laying $SYSOPS_FLEET_TEST_OVERLAY over the copy"
    cp -a "$SYSOPS_FLEET_TEST_OVERLAY/." "$COLLECTION_DIR/"
fi
# ansible-test finds its files with git from the nearest .git upwards; give the
# copy its own (empty) repository so that its files count as untracked, not
# as ignored by the checkout's .gitignore (.build/).
if command -v git >/dev/null; then
    git -C "$COLLECTION_DIR" init -q
fi
log "copied $(find "$COLLECTION_DIR" \( -path "$COLLECTION_DIR/.git" -o -path "$COLLECTION_DIR/tests/output" \) -prune -o -type f -print | wc -l) files"

# --- 2. offline pip bootstrap for ansible-test's venvs -------------------------
CACHE_DIR="$HOME/.ansible/test/cache"
WHEEL_DIR="$CACHE_DIR/offline-wheels"
mkdir -p "$WHEEL_DIR"

# What ansible-test bootstraps into each venv it makes, per Python version: pip, and in
# ansible-core 2.16 and older also setuptools and wheel (as "name==version" lines). Every
# one of them must be a wheel in WHEEL_DIR for the offline stand-in below.
BOOTSTRAP_PINS="$("$VENV_PY" - <<'EOF' 2>/dev/null || true
import types
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._util.target.common.constants import CONTROLLER_PYTHON_VERSIONS, REMOTE_ONLY_PYTHON_VERSIONS
pins = set()
for v in REMOTE_ONLY_PYTHON_VERSIONS + CONTROLLER_PYTHON_VERSIONS:
    pins.update('%s==%s' % item for item in get_venv_packages(types.SimpleNamespace(version=v)).items() if item[1])
print('\n'.join(sorted(pins)))
EOF
)"
if [ -z "$BOOTSTRAP_PINS" ]; then
    # Fallback for an ansible-test whose internals moved: the default pin in its source.
    BOOTSTRAP_PINS="$(grep -rhoE "pip='[0-9][0-9.]*'" "$("$VENV_PY" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" | sed -E "s/pip='(.*)'/pip==\1/" | sort -u)"
fi
PIP_VERSIONS="$(sed -n 's/^pip==//p' <<<"$BOOTSTRAP_PINS")"
[ -n "$PIP_VERSIONS" ] || die "could not tell which pip version ansible-test bootstraps"

# fetch_wheel NAME==VERSION: that wheel into WHEEL_DIR once (a warning if PyPI does not have it).
fetch_wheel() {
    local name="${1%%==*}" ver="${1##*==}"
    compgen -G "$WHEEL_DIR/$name-$ver-*.whl" >/dev/null && return 0
    log "fetching the $name $ver wheel into $WHEEL_DIR"
    "$VENV_PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$WHEEL_DIR" "$1" 2>&1 | { grep -v '^WARNING: Location' >&2 || true; }
    compgen -G "$WHEEL_DIR/$name-$ver-*.whl" >/dev/null || log "WARNING: could not download $1"
}
for pin in $BOOTSTRAP_PINS; do
    case "$pin" in pip==*) ;; *) fetch_wheel "$pin" ;; esac
done

seed_pip() {
    local ver="$1" shim tmp
    if ! compgen -G "$WHEEL_DIR/pip-$ver-*.whl" >/dev/null; then
        log "fetching the pip $ver wheel into $WHEEL_DIR"
        if ! "$VENV_PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
                -d "$WHEEL_DIR" "pip==$ver" >&2; then
            log "WARNING: could not download pip $ver; falling back to the pip wheels bundled with ensurepip"
        fi
    fi
    if ! compgen -G "$WHEEL_DIR/pip-*.whl" >/dev/null; then
        local d
        for d in $(python_dirs); do
            cp -n "$d"/../lib/python3*/ensurepip/_bundled/pip-*.whl "$WHEEL_DIR/" 2>/dev/null || true
        done
        compgen -G "$WHEEL_DIR/pip-*.whl" >/dev/null || die "no pip wheel could be found or downloaded for ansible-test's venvs"
    fi
    shim="$CACHE_DIR/get_pip_${ver//./_}.py"
    tmp="$(mktemp "$shim.XXXXXX")"
    cat > "$tmp" <<EOF
# Offline stand-in for get-pip.py $ver, written by sysops.fleet's
# scripts/ansible_test.sh (it is rewritten on every run). ansible-test runs it
# with pip install arguments (e.g. "pip==$ver --no-setuptools --no-wheel") in a
# fresh venv without pip; it installs pip from the wheels in WHEEL_DIR.
import glob
import os
import re
import sys

WHEEL_DIR = '$WHEEL_DIR'
WANT = '$ver'


def _version(path):
    match = re.match(r'pip-([0-9][0-9.]*)-', os.path.basename(path))
    return tuple(int(x) for x in match.group(1).rstrip('.').split('.')) if match else ()


args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel', '--no-pip')]
wheels = glob.glob(os.path.join(WHEEL_DIR, 'pip-%s-*.whl' % WANT))
if not wheels:
    # not the pinned version: install the newest wheel there is, unpinned
    wheels = sorted(glob.glob(os.path.join(WHEEL_DIR, 'pip-*.whl')), key=_version)
    args = ['pip' if re.match(r'^pip([=<>!~ ].*)?$', a) else a for a in args]
if not wheels:
    sys.exit('get-pip stand-in: no pip wheel in %s' % WHEEL_DIR)
sys.path.insert(0, wheels[-1])
from pip._internal.cli.main import main  # noqa: E402

sys.exit(main(['install', '--no-index', '--find-links', WHEEL_DIR, '--no-cache-dir', '--quiet'] + args))
EOF
    if cmp -s "$tmp" "$shim"; then rm -f "$tmp"; else mv -f "$tmp" "$shim"; log "seeded $shim"; fi
}
for v in $PIP_VERSIONS; do seed_pip "$v"; done

# --- 3. PATH: real interpreters first, no pyenv shims ---------------------------
new_path=""
add_path() { case ":$new_path:" in *":$1:"*) ;; *) new_path="${new_path:+$new_path:}$1" ;; esac; }
# newest version first, so that plain python3 is the newest one
for d in $(python_dirs | grep -E '/versions/[0-9]' | awk -F/ '{print $(NF-1) "\t" $0}' | sort -V -r | cut -f2) \
         $(python_dirs | grep -vE '/versions/[0-9]'); do
    add_path "$d"
done
IFS=: read -r -a old_path <<< "$PATH"
for d in "${old_path[@]}"; do
    [ -n "$d" ] || continue
    case "$d" in */.pyenv/shims|*/.pyenv/*/shims|*/pyenv-virtualenv/shims|"$VENV/bin") continue ;; esac
    add_path "$d"
done
export PATH="$new_path"
unset PYENV_VERSION VIRTUAL_ENV PYTHONPATH 2>/dev/null || true

available_pythons() {
    "$VENV_PY" - <<'EOF'
import shutil
from ansible_test._util.target.common.constants import CONTROLLER_PYTHON_VERSIONS, REMOTE_ONLY_PYTHON_VERSIONS
print(' '.join(v for v in REMOTE_ONLY_PYTHON_VERSIONS + CONTROLLER_PYTHON_VERSIONS if shutil.which('python' + v)))
EOF
}
log "Pythons on PATH that ansible-test supports: $(available_pythons)"

# --- 4. run ---------------------------------------------------------------------
has_opt() {  # has_opt OPT... -- ARGS...: is any OPT among ARGS (also as OPT=value)?
    local opts=() a o
    while [ "$1" != "--" ]; do opts+=("$1"); shift; done
    shift
    for a in "$@"; do
        for o in "${opts[@]}"; do
            if [ "$a" = "$o" ] || [[ "$a" == "$o="* ]]; then return 0; fi
        done
    done
    return 1
}
ENV_OPTS=(--local --venv --docker --controller --target --python-interpreter --remote)

EXTRA=()
case "$COMMAND" in
    sanity)
        # No --requirements needed: ansible-test always installs each sanity
        # test's requirements into its own venv under ~/.ansible/test/venv.
        if ! command -v shellcheck >/dev/null && [ "${SYSOPS_FLEET_NO_SHELLCHECK:-0}" != 1 ]; then
            log "installing shellcheck (apt) for the sanity test of that name"
            apt_install() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null 2>&1; }
            apt_install || { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 && apt_install; } \
                || log "WARNING: could not install shellcheck; the shellcheck sanity test will be skipped"
        fi
        ;;
    units)
        # --venv: pytest & co. go into venvs that ansible-test manages (and
        # installs requirements into by itself), not into .venv or the pyenv
        # interpreters.
        has_opt "${ENV_OPTS[@]}" -- "$@" || EXTRA+=(--venv)
        ;;
    integration)
        # Our targets create network namespaces as root: they carry the
        # "destructive" alias, which ansible-test skips on the (unmanaged)
        # local machine unless told otherwise -- and then exits 0 having run
        # nothing.
        has_opt --allow-destructive -- "$@" || EXTRA+=(--allow-destructive)
        ;;
esac

# ansible-test bug (2.21): when it re-executes itself (--venv, and other
# delegation), a flag without a value such as --venv swallows the positional
# argument right after it, e.g. "--venv demo_target" runs *all* targets.
# Moving such flags behind everything else (but before a "--") is harmless.
ARGS=() TAIL_FLAGS=() REST=()
seen_dashdash=0
for a in "$@"; do
    if [ $seen_dashdash = 1 ]; then REST+=("$a"); continue; fi
    case "$a" in
        --) seen_dashdash=1; REST+=("$a") ;;
        --venv|--local|--venv-system-site-packages|--docker-privileged) TAIL_FLAGS+=("$a") ;;
        *) ARGS+=("$a") ;;
    esac
done
for a in "${EXTRA[@]}"; do
    case "$a" in
        --venv) TAIL_FLAGS+=("$a") ;;
        *) ARGS=("$a" "${ARGS[@]}") ;;
    esac
done
FINAL=("${ARGS[@]}" "${TAIL_FLAGS[@]}" "${REST[@]}")

cd "$COLLECTION_DIR"
log "running: ansible-test $COMMAND ${FINAL[*]} (in $COLLECTION_DIR)"
start=$SECONDS
rc=0
"$ANSIBLE_TEST" "$COMMAND" "${FINAL[@]}" || rc=$?
log "ansible-test $COMMAND exited $rc after $((SECONDS - start))s; results under $COLLECTION_DIR/tests/output"
exit "$rc"
