#!/usr/bin/env python3
"""The main job at fleet scale: blue-green rollouts of every tenant on a Docker fleet,
drover beside Ansible and pyinfra doing the same job, with the per-target floor measured by hand.

usage: bench.py [--hosts 40] [--runs 3] [--tools drover,ansible,pyinfra] [--drover BIN]
                [--md BENCHMARKS.md] [--out DIR] [--others-from RESULTS.json ...]

The fleet is docker/fleet.sh's (systemd, sshd, nginx per host); `up N` writes an
inventory with N + N/2 tenants, each on two hosts (40 hosts: 60 tenants, 120 targets,
3 per host). Each tool gets a fresh fleet (bare hosts), then:

  first deploy   release 1.0.0 from bare hosts, --batch 25% / serial: 25%   (once)
  update         blue-green to 2.0.0, 1.0.0, 2.0.0 ... --batch 25%            (--runs)
  rollback       every tenant back to its previous color                      (once)
  status         drover status --all (drover only; the peers have none)       (--runs)

`--others-from` takes a peer's figures from an earlier results.json (a full Ansible or
pyinfra run at 40 hosts takes most of an hour); the block says which figures came from
which run and when.

A run counts only when the tool exits 0 AND every target answers the expected version
through nginx on its host (`Host: <tenant>` on port 80, checked with docker exec after
the run, untimed). A run that fails is reported as failed, not timed.

On drover's fleet it also measures the per-target floor without drover (floor.sh on one
host: restart the idle unit, poll health every 10 ms, rewrite the nginx upstream,
nginx -t, reload, one request through the proxy) and one SSH round trip (`true` over an
open OpenSSH ControlMaster connection).

Results: OUT/results.json and a generated block in the --md file between
<!-- bluegreen:begin --> and <!-- bluegreen:end -->.
"""
import argparse
import concurrent.futures
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pyinfra_bench

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FLEET_SH = REPO / "docker" / "fleet.sh"
PLAYBOOK = REPO / "playbooks" / "agent.toml"
BEGIN, END = "<!-- bluegreen:begin -->", "<!-- bluegreen:end -->"
SECRET = "bench-not-a-secret"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class Fleet:
    """A docker/fleet.sh fleet of its own name and subnet."""

    def __init__(self, n, name="drover-bench-bg", subnet="172.29.251.0/24"):
        self.n, self.name = n, name
        self.state = Path(tempfile.gettempdir()) / name
        self.env = dict(os.environ, DROVER_FLEET_NAME=name, DROVER_FLEET_SUBNET=subnet,
                        DROVER_FLEET_DIR=str(self.state), DROVER_FLEET_TIMEOUT="300")

    def up(self):
        t0 = time.monotonic()
        subprocess.run(["bash", str(FLEET_SH), "up", str(self.n)], env=self.env, check=True)
        self.up_s = time.monotonic() - t0
        inv = tomllib.loads((self.state / "inventory.toml").read_text())
        self.hosts = {h: v["address"] for h, v in inv["hosts"].items()}
        self.tenants = inv["tenants"]
        log(f"fleet {self.name}: {self.n} hosts, {len(self.tenants)} tenants, "
            f"{self.targets()} targets up in {self.up_s:.0f} s")

    def down(self):
        subprocess.run(["bash", str(FLEET_SH), "down"], env=self.env, check=False)

    def targets(self):
        return sum(len(t["hosts"]) for t in self.tenants.values())

    def tenants_on(self, host):
        return [(name, t) for name, t in self.tenants.items() if host in t["hosts"]]

    def sh(self, host, script, timeout=120):
        return subprocess.run(["docker", "exec", "-i", f"{self.name}-{host}", "bash", "-s"],
                              input=script, text=True, capture_output=True, timeout=timeout)

    def memory_mib(self):
        """Memory of each host container (MiB), from docker stats."""
        out = subprocess.run(["docker", "stats", "--no-stream", "--format",
                              "{{.Name}} {{.MemUsage}}"], capture_output=True, text=True).stdout
        mib = []
        for line in out.splitlines():
            name, usage = line.split(" ", 1)
            if name.startswith(self.name + "-host-"):
                mib.append(to_mib(usage.split("/")[0].strip()))
        return mib

    def verify(self, version):
        """Every target answers `version` through nginx on its host: (ok, failures)."""
        def one(host):
            names = [name for name, _ in self.tenants_on(host)]
            script = "for t in %s; do b=$(curl -fsS -m 3 -H \"Host: $t\" http://127.0.0.1/health 2>&1); " \
                     "echo \"$t $b\"; done\n" % " ".join(names)
            r = self.sh(host, script)
            bad = []
            for line in r.stdout.splitlines():
                t, _, body = line.partition(" ")
                if f'"version": "{version}"' not in body and f'"version":"{version}"' not in body:
                    bad.append(f"{t}@{host}: {body[:120]}")
            missing = len(names) - len(r.stdout.splitlines())
            if missing:
                bad.append(f"{host}: {missing} tenant(s) not checked ({r.stderr.strip()[:120]})")
            return len(names) - len(bad), bad
        ok, failures = 0, []
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for k, bad in pool.map(one, sorted(self.hosts)):
                ok += k
                failures += bad
        return ok, failures


def to_mib(s):
    m = re.match(r"([\d.]+)\s*([KMG]i?B|B)", s)
    if not m:
        return 0.0
    v, unit = float(m.group(1)), m.group(2)
    return v * {"B": 1 / 2**20, "KiB": 1 / 1024, "KB": 1 / 1024, "MiB": 1, "MB": 1,
                "GiB": 1024, "GB": 1024}[unit]


def timed(cmd, env, cwd, out_path, timeout=1800):
    """Runs cmd; wall seconds, exit code, peak RSS (MiB) of its largest process, CPU s."""
    t0 = time.monotonic()
    with open(out_path, "w") as out:
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _, status, ru = os.wait4(p.pid, 0)
        except KeyboardInterrupt:
            p.kill()
            raise
    wall = time.monotonic() - t0
    return {"wall_s": round(wall, 2), "exit": os.waitstatus_to_exitcode(status),
            "peak_rss_mib": round(ru.ru_maxrss / 1024, 1),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 2)}


def judged(result, fleet, version, name):
    ok, failures = fleet.verify(version)
    result.update(verified=ok, targets=fleet.targets(), failures=failures[:10])
    result["success"] = result["exit"] == 0 and ok == fleet.targets()
    state = "ok" if result["success"] else "FAILED"
    log(f"{name}: {state} in {result['wall_s']} s (exit {result['exit']}, "
        f"{ok}/{fleet.targets()} answer {version})")
    for f in failures[:5]:
        log(f"  {f}")
    return result


def versions(runs):
    return ["2.0.0" if i % 2 == 0 else "1.0.0" for i in range(runs)]


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))] if v else 0


def phases_of(path):
    """Per-phase lists of ms over the targets of a drover --json deploy."""
    per = {}
    for line in Path(path).read_text().splitlines():
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        for k, ms in (rec.get("phases") or {}).items():
            per.setdefault(k, []).append(ms)
        per.setdefault("target total", []).append(rec.get("duration_ms", 0))
    return {k: {"median": statistics.median(v), "p95": percentile(v, 95), "n": len(v)}
            for k, v in per.items()}


def bench_drover(args, fleet, out):
    env = dict(os.environ, DROVER_SECRET_API_KEY=SECRET, NO_COLOR="1")
    inv = str(fleet.state / "inventory.toml")
    work = out / "drover"
    work.mkdir(parents=True, exist_ok=True)  # the run journal (.drover/) lands here
    d = args.drover
    load = {}

    def timed_at(name, *a):
        load[name] = os.getloadavg()[0]
        return timed(*a)
    deploy = lambda v: [d, "-i", inv, "deploy", str(PLAYBOOK), "--all", "--strategy",
                        "blue-green", "--batch", "25%", "--set", f"version={v}", "--json"]
    res = {"load": load}
    res["first"] = judged(timed_at("first", deploy("1.0.0"), env, work, work / "first.json"),
                          fleet, "1.0.0", "drover first deploy")
    res["update"], res["phases"] = [], []
    for i, v in enumerate(versions(args.runs)):
        path = work / f"update-{i + 1}.json"
        r = judged(timed_at(f"update {i + 1}", deploy(v), env, work, path), fleet, v,
                   f"drover update {i + 1} ({v})")
        res["update"].append(r)
        if r["success"]:
            res["phases"].append(phases_of(path))
    previous = "1.0.0" if versions(args.runs)[-1] == "2.0.0" else "2.0.0"
    res["rollback"] = judged(timed_at("rollback", [d, "-i", inv, "rollback", "--all", "--json"], env, work,
                                   work / "rollback.json"), fleet, previous, "drover rollback --all")
    res["status"] = []
    for i in range(args.runs):
        r = timed_at(f"status {i + 1}", [d, "-i", inv, "status", "--all", "--format", "json"], env,
                     work, work / f"status-{i + 1}.json")
        r["success"] = r["exit"] in (0, 1) and status_complete(work / f"status-{i + 1}.json", fleet)
        log(f"drover status --all: {'ok' if r['success'] else 'FAILED'} in {r['wall_s']} s")
        res["status"].append(r)
    res["floor"] = floor(fleet)
    res["round_trip_ms"] = round_trip(fleet)
    res["memory_mib"] = fleet.memory_mib()
    return res


def status_complete(path, fleet):
    try:
        rep = json.loads(Path(path).read_text())
    except (ValueError, OSError):
        return False
    hosts = rep.get("hosts", [])
    return len(hosts) == fleet.n and all(h.get("state", h.get("status")) in ("up", "ok") for h in hosts)


def floor(fleet, runs=5):
    """Floor of one target's switch on host-1, done by hand (floor.sh): ms per run."""
    host = "host-1"
    tenant, t = fleet.tenants_on(host)[0]
    script = (HERE / "floor.sh").read_text()
    times = []
    for _ in range(runs):
        r = fleet.sh(host, f"set -- {tenant} {t['port']}\n{script}")
        m = re.search(r"^floor_ms=(\d+) (.*)$", r.stdout, re.M)
        if r.returncode != 0 or not m:
            log(f"floor.sh failed: {r.stdout[-300:]} {r.stderr[-300:]}")
            return None
        times.append({"total": int(m.group(1)),
                      **{k: int(v) for k, v in (kv.split("=") for kv in m.group(2).split())}})
    return {k: statistics.median(x[k] for x in times) for k in times[0]} | {"runs": runs,
                                                                           "tenant": tenant}


def round_trip(fleet, runs=10):
    """ms of `true` over an open OpenSSH connection (ControlMaster) to host-1."""
    sock = Path(tempfile.mkdtemp()) / "cm"
    addr = fleet.hosts["host-1"]
    base = ["ssh", "-i", str(fleet.state / "id_ed25519"), "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={fleet.state / 'known_hosts'}", "-o", "BatchMode=yes",
            "-S", str(sock), f"deploy@{addr}"]
    subprocess.run(base[:-1] + ["-M", "-f", "-N", base[-1]], check=True)
    try:
        ms = []
        for _ in range(runs):
            t0 = time.monotonic()
            subprocess.run(base + ["true"], check=True)
            ms.append((time.monotonic() - t0) * 1000)
        return round(statistics.median(ms), 1)
    finally:
        subprocess.run(base[:-1] + ["-O", "exit", base[-1]], capture_output=True)
        shutil.rmtree(sock.parent, ignore_errors=True)


def bench_ansible(args, fleet, out):
    venv = Path(args.venv)
    work = out / "ansible"
    work.mkdir(parents=True, exist_ok=True)
    inv = {"fleet": {"hosts": {}, "vars": {
        "ansible_user": "deploy", "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_private_key_file": str(fleet.state / "id_ed25519")}}}
    for h, addr in fleet.hosts.items():
        inv["fleet"]["hosts"][h] = {"ansible_host": addr, "tenants": [
            {"name": n, "port": t["port"], "tier": t.get("vars", {}).get("tier", "standard")}
            for n, t in fleet.tenants_on(h)]}
    (work / "inventory.json").write_text(json.dumps(inv, indent=1))
    cp = Path(tempfile.mkdtemp(prefix="ansible-cp-"))
    (work / "ansible.cfg").write_text(
        "[defaults]\n"
        f"forks = {fleet.n}\nhost_key_checking = True\nretry_files_enabled = False\n"
        "interpreter_python = /usr/bin/python3\n"
        "[ssh_connection]\npipelining = True\n"
        f"control_path_dir = {cp}\n"
        f"ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=yes "
        f"-o UserKnownHostsFile={fleet.state / 'known_hosts'}\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(work / "ansible.cfg"), DROVER_SECRET_API_KEY=SECRET,
               PATH=f"{venv / 'bin'}:{os.environ['PATH']}", ANSIBLE_NOCOLOR="1")
    play = lambda yml, *extra: [str(venv / "bin" / "ansible-playbook"), "-i",
                                str(work / "inventory.json"), str(HERE / "ansible" / yml), *extra]

    def run(cmd, path, version, name):
        r = judged(timed(cmd, env, work, path), fleet, version, name)
        # the ControlPersist masters outlive ansible-playbook: end them (untimed)
        subprocess.run(["pkill", "-f", str(cp)], capture_output=True)
        return r

    res = {"first": run(play("deploy.yml", "-e", "version=1.0.0"), work / "first.log", "1.0.0",
                        "ansible first deploy"), "update": []}
    for i, v in enumerate(versions(args.runs)):
        res["update"].append(run(play("deploy.yml", "-e", f"version={v}"),
                                 work / f"update-{i + 1}.log", v, f"ansible update {i + 1} ({v})"))
    previous = "1.0.0" if versions(args.runs)[-1] == "2.0.0" else "2.0.0"
    res["rollback"] = run(play("rollback.yml"), work / "rollback.log", previous, "ansible rollback")
    shutil.rmtree(cp, ignore_errors=True)
    return res


def med(runs, key="wall_s"):
    ok = [r[key] for r in runs if r.get("success")]
    if len(ok) != len(runs) or not ok:
        return None
    return statistics.median(ok)


def fmt(v, unit=" s"):
    return "FAILED" if v is None else f"{v:.2f}{unit}"


PEERS = (("ansible", "Ansible"), ("pyinfra", "pyinfra"))


def render(res, args):
    dr = res.get("drover")
    peers = [(key, name, res[key]) for key, name in PEERS if res.get(key)]
    versions_line = "; ".join(res[f"{k}_version"] for k, _, _ in peers if res.get(f"{k}_version"))
    lines = [BEGIN, "", f"Generated by `python3 bench/bluegreen/bench.py --hosts {args.hosts} "
             f"--runs {args.runs}` on {res['date']}.", "",
             f"Machine: {res['machine']}. {res['drover_version']}; "
             f"{versions_line or 'no peer run'}.", "",
             f"Fleet: {args.hosts} hosts (Docker containers: systemd, sshd, nginx), "
             f"{res['tenants']} tenants on 2 hosts each = {res['targets']} targets, 3 per host. "
             f"Fleet up in {res['fleet_up_s']:.0f} s.", "",
             "Every host is a container on the same 2 cores as the control node: the hosts' "
             "work (sshd, sudo, systemd, the Python agents starting, nginx reloads, curl) "
             "competes with the tools for those cores, so wall times here are "
             "bounded by the box, for every tool alike; the CPU figures below show what the "
             "control node itself spends.", ""]
    for key, name, _ in peers:
        if res.get(f"{key}_from"):
            lines += [f"{name}'s figures: {res[f'{key}_from']}.", ""]
    if dr and dr.get("load"):
        lines += ["Load average (1 min) as each drover run started: "
                  + ", ".join(f"{k} {v:.0f}" for k, v in dr["load"].items()) + ".", ""]
    if dr and dr.get("memory_mib"):
        m = dr["memory_mib"]
        lines += [f"Memory per host with its 3 agents running (docker stats, after the runs): "
                  f"median {statistics.median(m):.0f} MiB, max {max(m):.0f} MiB.", ""]
    lines += ["| job | drover | " + " | ".join(n for _, n, _ in peers) + " | "
              + " | ".join(f"drover / {n}" for _, n, _ in peers) + " |",
              "|---|---|" + "---|" * (2 * len(peers))]

    def row(name, pick):
        d = pick(dr) if dr else None
        cells, ratios = [], []
        for _, _, r in peers:
            p = pick(r)
            cells.append("not run" if p is False else fmt(p))
            ratios.append(f"1/{p / d:.1f}" if d and p else "—")
        lines.append(f"| {name} | {fmt(d)} | " + " | ".join(cells) + " | "
                     + " | ".join(ratios) + " |")
    counts = " / ".join(str(len(r["update"])) for r in ([dr] if dr else []) + [r for *_, r in peers])
    row("first deploy from bare hosts (1 run)", lambda r: med([r["first"]]))
    row(f"blue-green update, --batch 25% (median of {counts})",
        lambda r: med(r["update"]) if r["update"] else False)
    row("rollback, every tenant (1 run)",
        lambda r: med([r["rollback"]]) if r.get("rollback") else False)
    if dr:
        lines.append(f"| `drover status --all` (median of {args.runs}) | {fmt(med(dr['status']))} | "
                     + " | ".join("(none)" for _ in peers) + " |" + " |" * len(peers))
        rss = max(r["peak_rss_mib"] for r in [dr["first"], *dr["update"], dr["rollback"], *dr["status"]])
        cpu = lambda runs: statistics.median(r["cpu_s"] for r in runs)
        lines += ["", f"Peak RSS of drover over all its runs: {rss:.0f} MiB. drover's own CPU "
                  f"(user+sys, the figure that carries over to real hosts, whose work runs "
                  f"elsewhere): first deploy {dr['first']['cpu_s']:.1f} s, update "
                  f"{cpu(dr['update']):.1f} s, rollback {dr['rollback']['cpu_s']:.1f} s, "
                  f"status {cpu(dr['status']):.2f} s."]
        for key, name, r in peers:
            if r["first"].get("cpu_s") is None:
                continue
            parts = [f"first deploy {r['first']['cpu_s']:.1f} s"]
            if r["update"] and all(u.get("cpu_s") is not None for u in r["update"]):
                parts.append(f"update {cpu(r['update']):.1f} s")
            if r.get("rollback") and r["rollback"].get("cpu_s") is not None:
                parts.append(f"rollback {r['rollback']['cpu_s']:.1f} s")
            lines.append(f"{name}'s CPU (its process tree): " + ", ".join(parts) + ".")
        fl, rt = dr.get("floor"), dr.get("round_trip_ms")
        if dr["phases"]:
            walls = [u["wall_s"] for u in dr["update"] if u["success"]]
            mid = walls.index(sorted(walls)[len(walls) // 2])
            ph = dr["phases"][mid]
            lines += ["", f"drover's update (run {mid + 1}, the median), per target, ms:", "",
                      "| phase | median | p95 | targets |", "|---|---|---|---|"]
            for k, v in ph.items():
                lines.append(f"| {k} | {v['median']:.0f} | {v['p95']:.0f} | {v['n']} |")
        if fl:
            lines += ["", f"Floor without drover (floor.sh on host-1, tenant {fl['tenant']}, median of "
                      f"{fl['runs']}): {fl['total']:.0f} ms = "
                      + ", ".join(f"{k} {v:.0f}" for k, v in fl.items()
                                  if k not in ("total", "runs", "tenant"))
                      + f". One SSH round trip: {rt} ms."]
            if dr["phases"]:
                per = ph["target total"]["median"]
                bound = 1.5 * fl["total"] + rt
                lines.append(f"drover's median per-target time {per:.0f} ms vs 1.5 × floor + one "
                             f"round trip = {bound:.0f} ms: {'met' if per <= bound else 'NOT met'}.")
    for tool, r in [("drover", dr)] + [(n, r) for _, n, r in peers]:
        if not r:
            continue
        for name, runs in (("first", [r["first"]]), ("update", r["update"]),
                           ("rollback", [r["rollback"]] if r.get("rollback") else [])):
            for x in runs:
                if not x["success"]:
                    lines.append(f"\n{tool} {name} FAILED: exit {x['exit']}, {x['verified']}/"
                                 f"{x['targets']} verified; " + "; ".join(x["failures"][:3]))
    for key, name, r in peers:
        if r.get("note"):
            lines += ["", f"{name}: {r['note']}."]
    lines += ["", END]
    return "\n".join(lines)


def take_others(res, paths, ran):
    """Peers not run now, from earlier results files, marked with where they came from."""
    for path in paths:
        old = json.loads(Path(path).read_text())
        for key, name in PEERS:
            if key in ran or key not in old or key in res:
                continue
            res[key] = old[key]
            res[f"{key}_version"] = old.get(f"{key}_version")
            when = old.get(f"{key}_date") or old.get("date", "an earlier run")
            res[f"{key}_from"] = (old.get(f"{key}_note")
                                  or f"from {Path(path).name}, run on {when}")


def write_md(path, block):
    text = Path(path).read_text() if Path(path).exists() else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text += "\n## D. Blue-green rollout at fleet scale\n\n" + block + "\n"
    Path(path).write_text(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=40)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tools", default="drover,ansible,pyinfra")
    ap.add_argument("--others-from", nargs="*", default=[],
                    help="peers' figures (ansible, pyinfra) from earlier results.json files")
    ap.add_argument("--drover", default=str(REPO / "target" / "release" / "drover"))
    ap.add_argument("--venv", default="/tmp/bench-venv")
    ap.add_argument("--md", default=str(REPO / "BENCHMARKS.md"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--from-json", help="re-render the block from an earlier results.json")
    args = ap.parse_args()
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
        take_others(res, args.others_from, set())
        block = render(res, args)
        print(block)
        write_md(args.md, block)
        return
    tools = set(args.tools.split(","))
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-bluegreen-"))
    out.mkdir(parents=True, exist_ok=True)
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
                      f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
           "drover_version": subprocess.run([args.drover, "--version"], capture_output=True,
                                            text=True).stdout.strip()}
    if "pyinfra" in tools:
        res["pyinfra_version"] = pyinfra_bench.version(args.venv)
    if "ansible" in tools:
        res["ansible_version"] = subprocess.run(
            [str(Path(args.venv) / "bin" / "ansible-playbook"), "--version"], capture_output=True,
            text=True).stdout.splitlines()[0]
    fleet = Fleet(args.hosts)
    try:
        pyinfra = lambda a, f, o: pyinfra_bench.bench_pyinfra(a, f, o, timed, judged, versions,
                                                              SECRET)
        for tool, fn in (("drover", bench_drover), ("ansible", bench_ansible),
                         ("pyinfra", pyinfra)):
            if tool not in tools:
                continue
            fleet.up()  # bare hosts for each tool
            res.update(tenants=len(fleet.tenants), targets=fleet.targets(), fleet_up_s=fleet.up_s)
            res[tool] = fn(args, fleet, out)
            fleet.down()
    finally:
        fleet.down()
        take_others(res, args.others_from, tools)
        (out / "results.json").write_text(json.dumps(res, indent=1))
        log(f"results: {out / 'results.json'}")
    block = render(res, args)
    print(block)
    write_md(args.md, block)


if __name__ == "__main__":
    main()
