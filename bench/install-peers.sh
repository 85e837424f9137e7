#!/usr/bin/env bash
# Install the fan-out tools drover is compared with: pssh (Debian package; binary parallel-ssh)
# and ansible-core + pyinfra in a private venv (PyPI). Versions are pinned so runs compare;
# override with ANSIBLE_SPEC / PYINFRA_SPEC. Idempotent.
set -euo pipefail
source "$(dirname "$0")/common.sh"

ANSIBLE_SPEC="${ANSIBLE_SPEC:-ansible-core==2.19.14}"
PYINFRA_SPEC="${PYINFRA_SPEC:-pyinfra==3.10.0}"

apt_install pssh openssh-client openssh-server nftables
python3 -c "import venv, ensurepip" 2>/dev/null || apt_install python3-venv   # Debian python3 needs it
if ! { [ -x "$VENV/bin/ansible" ] && [ -x "$VENV/bin/pyinfra" ]; }; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "$ANSIBLE_SPEC" "$PYINFRA_SPEC"
fi
command -v parallel-ssh >/dev/null
"$VENV/bin/ansible" --version >/dev/null
"$VENV/bin/pyinfra" --version >/dev/null
echo "peers installed: $(command -v parallel-ssh), $VENV/bin/ansible, $VENV/bin/pyinfra"
