#!/usr/bin/env python3
"""drover example agent: a tiny HTTP service using only the standard library.

Each release directory (releases/<version>/) is self-contained: this file
plus release.json, which names the version and how the release behaves:

    {"version": "1.0.0"}                                   healthy
    {"version": "3.0.0-broken", "healthy": false}          /health answers 500
    {"version": "4.0.0-crash", "crash_after_s": 3}         exits 70 after ~3 s
    {"version": "5.0.0-flaky", "error_rate": 0.3}          500 to 3 in 10 requests
    {"version": "6.0.0-slow", "delay_ms": 300}             +300 ms on every request

Usage: agent.py [--port PORT] [--bind ADDR] [--version]
    PORT (or env PORT) is required; ADDR (or env BIND) defaults to 127.0.0.1.
    TENANT (env) names the tenant in answers; COLOR (env) the deploy color.
    AGENT_ERROR_RATE (env, 0..1) overrides error_rate, AGENT_DELAY_MS (env)
    overrides delay_ms, in a release that has that key (others ignore them).
    STATE_DIR (env, optional): a writable directory; each start counts itself
    in STATE_DIR/starts, and /health reports the count.

Endpoints (GET, HEAD and POST; a POST body is read and its size echoed):
    GET /health  200 {"status":"healthy","version":...} (500 "unhealthy" if broken)
                 never delayed, never failed on purpose: only traffic shows
                 that a flaky or slow release is bad
    GET /        200 text/plain "agent <version> tenant <tenant>\n"
Failures of a flaky release are spread evenly, not drawn at random: of the
first n requests other than /health, exactly floor(n * error_rate) answer 500.
SIGTERM and SIGINT stop it cleanly (exit 0).
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
STARTED = time.monotonic()


def load_release():
    release = {"version": "0.0.0", "healthy": True, "crash_after_s": None, "error_rate": None, "delay_ms": None}
    path = os.path.join(HERE, "release.json")
    try:
        with open(path, encoding="utf-8") as f:
            release.update(json.load(f))
    except FileNotFoundError:
        pass
    return release


def tunable(release, key, env, lo, hi):
    """The release's value for key, overridden by env; None if the release has no key.

    Only a release that declares the behaviour takes the override, so a stray
    AGENT_ERROR_RATE cannot turn a healthy release flaky.
    """
    if release.get(key) is None:
        return None
    raw = os.environ.get(env)
    name, raw = (f"release.json {key}", release[key]) if raw in (None, "") else (env, raw)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise SystemExit(f"agent: {name}={raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise SystemExit(f"agent: {name}={raw!r} is outside {lo:g}..{hi:g}")
    return value


RELEASE = load_release()
VERSION = str(RELEASE["version"])
TENANT = os.environ.get("TENANT", "")
COLOR = os.environ.get("COLOR", "")
ERROR_RATE = tunable(RELEASE, "error_rate", "AGENT_ERROR_RATE", 0.0, 1.0)
DELAY_S = (tunable(RELEASE, "delay_ms", "AGENT_DELAY_MS", 0.0, 600_000.0) or 0.0) / 1000.0
# A POST body larger than this is refused (413) instead of read.
MAX_BODY = 1 << 20


def log(msg):
    print(f"agent {VERSION}: {msg}", flush=True)


class Faults:
    """Decides which requests a flaky release fails: evenly spread, so a test
    sees the same error fraction on every run (request n fails when
    floor(n * rate) steps up)."""

    def __init__(self, rate):
        self.rate = rate
        self.count = 0
        self.lock = threading.Lock()

    def next_fails(self):
        if not self.rate:
            return False
        with self.lock:
            self.count += 1
            n = self.count
        return int(n * self.rate) > int((n - 1) * self.rate)


FAULTS = Faults(ERROR_RATE)


def count_start(state_dir):
    """Add this start to STATE_DIR/starts (written atomically); the new count."""
    path = os.path.join(state_dir, "starts")
    try:
        with open(path, encoding="utf-8") as f:
            starts = int(f.read().strip() or 0)
    except FileNotFoundError:
        starts = 0
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{starts + 1}\n")
    os.replace(tmp, path)
    return starts + 1


STARTS = None


class Handler(BaseHTTPRequestHandler):
    server_version = f"drover-agent/{VERSION}"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for
    # the client's delayed ACK (~40 ms per request on a kept-alive connection).
    disable_nagle_algorithm = True

    def _send(self, code, body, ctype):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Agent-Version", VERSION)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _read_body(self):
        """Read the request body (POST); its size, or None after answering an error."""
        raw = self.headers.get("Content-Length")
        if raw is None:
            return 0
        try:
            size = int(raw)
        except ValueError:
            size = -1
        if size < 0:
            self.close_connection = True
            self._send(400, json.dumps({"error": "bad Content-Length", "value": raw}) + "\n", "application/json")
            return None
        if size > MAX_BODY:
            self.close_connection = True
            self._send(413, json.dumps({"error": "body too large", "max": MAX_BODY}) + "\n", "application/json")
            return None
        left = size
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)
        return size - left

    def _route(self, body_size=None):
        path = self.path.split("?", 1)[0]
        if path != "/health":
            if DELAY_S:
                time.sleep(DELAY_S)
            if FAULTS.next_fails():
                body = {"error": "injected failure", "version": VERSION, "error_rate": ERROR_RATE}
                self._send(500, json.dumps(body, separators=(",", ":")) + "\n", "application/json")
                return
        if path == "/health":
            healthy = bool(RELEASE.get("healthy", True))
            body = {
                "status": "healthy" if healthy else "unhealthy",
                "version": VERSION,
                "tenant": TENANT or None,
                "color": COLOR or None,
                "pid": os.getpid(),
                "uptime_s": round(time.monotonic() - STARTED, 3),
            }
            if STARTS is not None:
                body["starts"] = STARTS
            if not healthy:
                body["reason"] = "this release is broken on purpose"
            self._send(200 if healthy else 500, json.dumps(body, separators=(",", ":")) + "\n", "application/json")
        elif path == "/":
            text = f"agent {VERSION}"
            if TENANT:
                text += f" tenant {TENANT}"
            if COLOR:
                text += f" color {COLOR}"
            if body_size is not None:
                text += f" received {body_size} bytes"
            self._send(200, text + "\n", "text/plain; charset=utf-8")
        else:
            self._send(404, json.dumps({"error": "not found", "path": path}, separators=(",", ":")) + "\n", "application/json")

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._route()

    def do_HEAD(self):  # noqa: N802
        self._route()

    def do_POST(self):  # noqa: N802
        size = self._read_body()
        if size is not None:
            self._route(size)

    def log_message(self, fmt, *args):
        log(f"{self.client_address[0]} {fmt % args}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="drover example agent")
    parser.add_argument("--port", type=int, default=os.environ.get("PORT"))
    parser.add_argument("--bind", default=os.environ.get("BIND", "127.0.0.1"))
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    args = parser.parse_args(argv)
    if args.version:
        print(VERSION)
        return 0
    if args.port is None:
        parser.error("a port is required: --port PORT or env PORT")
    port = int(args.port)

    global STARTS
    state_dir = os.environ.get("STATE_DIR")
    if state_dir:
        STARTS = count_start(state_dir)

    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((args.bind, port), Handler)
    stopping = threading.Event()

    def stop(signum, _frame):
        if not stopping.is_set():
            stopping.set()
            log(f"signal {signal.Signals(signum).name}: shutting down")
            # shutdown() waits for serve_forever(), so call it off this thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    crash_after = RELEASE.get("crash_after_s")
    if crash_after is not None:
        def crash():
            log(f"crashing on purpose after {crash_after}s")
            os._exit(70)
        timer = threading.Timer(float(crash_after), crash)
        timer.daemon = True
        timer.start()

    extra = ""
    if ERROR_RATE is not None:
        extra += f" error_rate={ERROR_RATE}"
    if DELAY_S:
        extra += f" delay_ms={DELAY_S * 1000:g}"
    if STARTS is not None:
        extra += f" starts={STARTS}"
    log(f"listening on {args.bind}:{port} tenant={TENANT or '-'} color={COLOR or '-'}{extra}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
