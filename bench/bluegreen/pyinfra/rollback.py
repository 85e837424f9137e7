"""Rollback as a pyinfra user would write it (like ../ansible/rollback.yml): for each
tenant, check the other color still answers, point nginx back at it, `nginx -t` + reload,
record the color. pyinfra has no rollback of its own."""
import sys
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, server

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shared import STATE, color_port, live_colors, nginx_conf, other  # noqa: E402

tenants = host.data.tenants
live = live_colors(host, tenants)
previous = {t["name"]: other(live[t["name"]]) for t in tenants}

for t in tenants:
    server.shell(name=f"previous color of {t['name']} answers", commands=[
        f"curl -fsS -m 3 -o /dev/null http://127.0.0.1:{color_port(t, previous[t['name']])}/health"])

for t in tenants:
    files.put(name=f"nginx upstream {t['name']}", dest=f"/etc/nginx/conf.d/pyinfra-{t['name']}.conf",
              mode="644", src=nginx_conf(t, previous[t["name"]]))

server.shell(name="nginx -t and graceful reload", commands=["nginx -t -q && systemctl reload nginx"])

for t in tenants:
    files.put(name=f"record color {t['name']}", dest=f"{STATE}/{t['name']}/color", mode="644",
              src=StringIO(f"{previous[t['name']]}\n"))
