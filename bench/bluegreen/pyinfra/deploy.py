"""The same blue-green rollout as `drover deploy playbooks/agent.toml --strategy blue-green`
(and as ../ansible/deploy.yml), written as a pyinfra user would: per host, for each of its
tenants (host data `tenants`): system user, directories, the release uploaded, the env
file (0600), the idle color's unit started, health polled with curl (pyinfra has no HTTP
operation), then the nginx upstream written, `nginx -t` + graceful reload, a request
through the proxy, and the live color recorded.

pyinfra has no `serial:`; bench.py runs this once per quarter of the hosts (inventory
groups batch1..batch4, `--limit batchN`), one after the other, like Ansible's
`serial: 25%`. Host keys are checked (ssh_strict_host_key_checking=yes, the fleet's
known_hosts). Run: pyinfra -y --parallel N inventory.py deploy.py --data version=2.0.0
"""
import os
import sys
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, server, systemd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from shared import STATE, color_port, live_colors, nginx_conf  # noqa: E402

RELEASES = HERE.parents[2] / "examples" / "agent" / "releases"
BASE, LOGS = "/opt/pyinfra-agent", "/var/log/pyinfra-agent"

version = str(host.data.get("version", "1.0.0"))
tenants = host.data.tenants
# The live color of each tenant, read once per host before any change; deploy to the other.
live = live_colors(host, tenants)
idle = {t["name"]: "green" if live.get(t["name"]) == "blue" else "blue" for t in tenants}


def port(t):
    return color_port(t, idle[t["name"]])


for t in tenants:
    server.user(name=f"tenant user {t['name']}", user=f"agent-{t['name']}", system=True,
                home=f"{STATE}/{t['name']}", create_home=False, shell="/usr/sbin/nologin")

for path in (BASE, STATE, LOGS):
    files.directory(name=f"parent {path}", path=path, user="root", group="root", mode="755")

for t in tenants:
    n, u = t["name"], f"agent-{t['name']}"
    for path, owner in ((f"{BASE}/{n}", "root"), (f"{BASE}/{n}/releases", "root"),
                        (f"{STATE}/{n}", u), (f"{LOGS}/{n}", u)):
        files.directory(name=f"directory {path}", path=path, user=owner, group=u, mode="750")
    files.sync(name=f"upload release {n}", src=str(RELEASES / version),
               dest=f"{BASE}/{n}/releases/{version}", user="root", group=u, mode="640",
               dir_mode="750")
    files.put(name=f"environment {n}", dest=f"/etc/pyinfra-agent-{n}.env", user="root",
              group="root", mode="600",
              src=StringIO(f"TIER={t['tier']}\nRELEASE={version}\n"
                           f"API_KEY={os.environ['DROVER_SECRET_API_KEY']}\n"))
    files.link(name=f"idle color {n}", path=f"{BASE}/{n}/{idle[n]}",
               target=f"{BASE}/{n}/releases/{version}", force=True)
    files.put(name=f"unit {n}", dest=f"/etc/systemd/system/pyinfra-{n}-{idle[n]}.service",
              mode="644", src=StringIO(f"""# Managed by pyinfra: tenant {n}, color {idle[n]}.
[Unit]
Description=agent {n} ({idle[n]})
After=network.target

[Service]
User={u}
EnvironmentFile=/etc/pyinfra-agent-{n}.env
ExecStart=/usr/bin/python3 {BASE}/{n}/{idle[n]}/agent.py --port {port(t)}
Restart=on-failure
MemoryMax=256M
CPUQuota=50%

[Install]
WantedBy=multi-user.target
"""))
    systemd.service(name=f"start {n} {idle[n]}", service=f"pyinfra-{n}-{idle[n]}.service",
                    running=True, restarted=True, enabled=True, daemon_reload=True)

for t in tenants:
    server.shell(name=f"health {t['name']}", commands=[
        f"for i in $(seq 30); do curl -fsS -m 3 http://127.0.0.1:{port(t)}/health 2>/dev/null"
        f" | grep -q '\"{version}\"' && exit 0; sleep 1; done; exit 1"])

for t in tenants:
    files.put(name=f"nginx upstream {t['name']}", dest=f"/etc/nginx/conf.d/pyinfra-{t['name']}.conf",
              mode="644", src=nginx_conf(t, idle[t["name"]]))

server.shell(name="nginx -t and graceful reload", commands=["nginx -t -q && systemctl reload nginx"])

for t in tenants:
    server.shell(name=f"verify {t['name']} through the proxy", commands=[
        f"for i in $(seq 10); do curl -fsS -m 3 -H 'Host: {t['name']}' http://127.0.0.1/health"
        f" 2>/dev/null | grep -q '\"{version}\"' && exit 0; sleep 1; done; exit 1"])

for t in tenants:
    files.put(name=f"record color {t['name']}", dest=f"{STATE}/{t['name']}/color", mode="644",
              src=StringIO(f"{idle[t['name']]}\n"))
