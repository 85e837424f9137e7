#!/usr/bin/env bash
# Install the fan-out tools drover is compared with: pssh (Debian package; binary parallel-ssh),
# ansible-core + pyinfra in a private venv (PyPI) and bssh (crates.io, cargo install), plus sudo
# (the four-operation job runs as root through password-less sudo). Versions are pinned so runs
# compare; override with ANSIBLE_SPEC / PYINFRA_SPEC / BSSH_SPEC. Idempotent.
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

ANSIBLE_SPEC="${ANSIBLE_SPEC:-ansible-core==2.19.14}"
PYINFRA_SPEC="${PYINFRA_SPEC:-pyinfra==3.10.0}"
# bssh 2.2.3: the newest release needs a newer rustc than this machine has
BSSH_SPEC="${BSSH_SPEC:-2.2.3}"

apt_install pssh openssh-client openssh-server nftables sudo
python3 -c "import venv, ensurepip" 2>/dev/null || apt_install python3-venv   # Debian python3 needs it
if ! { [ -x "$VENV/bin/ansible" ] && [ -x "$VENV/bin/pyinfra" ]; }; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "$ANSIBLE_SPEC" "$PYINFRA_SPEC"
fi
# bssh: cargo install, only when the installed one is missing or another version
BSSH="${BSSH:-$HOME/.cargo/bin/bssh}"
if ! { [ -x "$BSSH" ] && "$BSSH" --version 2>/dev/null | grep -qw -- "$BSSH_SPEC"; }; then
    echo ">>> cargo install bssh --version $BSSH_SPEC --locked (a few minutes)" >&2
    cargo install -q bssh --version "$BSSH_SPEC" --locked
fi
command -v parallel-ssh >/dev/null
"$VENV/bin/ansible" --version >/dev/null
"$VENV/bin/pyinfra" --version >/dev/null
"$BSSH" --version >/dev/null
visudo --version >/dev/null
echo "peers installed: $(command -v parallel-ssh), $VENV/bin/ansible, $VENV/bin/pyinfra, $BSSH ($("$BSSH" --version))"
