# The four-operation job, pyinfra's definition (bench/README.md, "The four-operation job").
# Equivalent to job.toml (drover) and job.yml (Ansible); all three are idempotent.
# job_root comes from the generated inventory ($STATE/inventory.py); the user benchjob
# is created once by the harness before the timed runs (one /etc/passwd for all "hosts").
#   pyinfra -y --parallel N $STATE/inventory.py bench/job/job_pyinfra.py
import os
import shlex

from pyinfra import host
from pyinfra.operations import files, server

HERE = os.path.dirname(os.path.abspath(__file__))
d = f"{host.data.job_root}/{host.name}"

files.directory(name="directory", path=d, user="root", group="root", mode="755", _sudo=True)
files.template(name="file from a template", src=os.path.join(HERE, "motd.j2"), dest=f"{d}/motd",
               user="root", group="root", mode="644", host_name=host.name, tier="gold", _sudo=True)
server.user(name="system user", user="benchjob", system=True, group="benchjob", home="/var/lib/benchjob",
            shell="/usr/sbin/nologin", create_home=False, _sudo=True)
# pyinfra has no `creates`: the guard is in the command, as drover's and Ansible's check it on the host
server.shell(name="guarded command",
             commands=[f"[ -e {shlex.quote(d)}/marker ] || echo done > {shlex.quote(d)}/marker"], _sudo=True)
