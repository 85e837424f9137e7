"""What deploy.py and rollback.py share: the live colors and the tenant's nginx config."""
from io import StringIO

from pyinfra.facts.server import Command

STATE = "/var/lib/pyinfra-agent"


def live_colors(host, tenants):
    """tenant -> its recorded color ('none' before the first deploy), one command per host."""
    names = " ".join(t["name"] for t in tenants)
    out = host.get_fact(
        Command,
        command=f"for t in {names}; do printf '%s %s\\n' \"$t\" "
                f"\"$(cat {STATE}/$t/color 2>/dev/null || echo none)\"; done",
        _sudo=True,
    )
    return dict(line.split() for line in out.splitlines())


def other(color):
    return "green" if color == "blue" else "blue"


def color_port(t, color):
    return t["port"] + (1 if color == "green" else 0)


def nginx_conf(t, color):
    """The upstream of tenant t pointing at color (same as ../ansible/templates/nginx.j2)."""
    n = t["name"]
    up = "pyinfra_" + n.replace("-", "_")
    return StringIO(f"""# Managed by pyinfra: tenant {n}, active color {color}.
upstream {up} {{
    server 127.0.0.1:{color_port(t, color)};
    keepalive 16;
}}
server {{
    listen 80;
    server_name {n};
    location / {{
        proxy_pass http://{up};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_next_upstream error timeout http_502 http_503;
    }}
}}
""")
