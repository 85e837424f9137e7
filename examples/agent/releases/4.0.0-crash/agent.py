#!/usr/bin/env python3
"""drover example agent: a tiny HTTP service using only the standard library.

Each release directory (releases/<version>/) is self-contained: this file
plus release.json, which names the version and how the release behaves:

    {"version": "1.0.0"}                                   healthy
    {"version": "3.0.0-broken", "healthy": false}          /health answers 500
    {"version": "4.0.0-crash", "crash_after_s": 3}         exits 70 after ~3 s

Usage: agent.py [--port PORT] [--bind ADDR] [--version]
    PORT (or env PORT) is required; ADDR (or env BIND) defaults to 127.0.0.1.
    TENANT (env) names the tenant in answers; COLOR (env) the deploy color.

Endpoints:
    GET /health  200 {"status":"healthy","version":...} (500 "unhealthy" if broken)
    GET /        200 text/plain "agent <version> tenant <tenant>\n"
    POST /       200 text/plain "agent <version> tenant <tenant> received <n> bytes\n"
                 (the body is read whole; at most 64 KiB, else 413)
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
# The largest POST body read; a load generator sends a few bytes.
MAX_BODY = 64 * 1024
STARTED = time.monotonic()


def load_release():
    release = {"version": "0.0.0", "healthy": True, "crash_after_s": None}
    path = os.path.join(HERE, "release.json")
    try:
        with open(path, encoding="utf-8") as f:
            release.update(json.load(f))
    except FileNotFoundError:
        pass
    return release


RELEASE = load_release()
VERSION = str(RELEASE["version"])
TENANT = os.environ.get("TENANT", "")
COLOR = os.environ.get("COLOR", "")


def log(msg):
    print(f"agent {VERSION}: {msg}", flush=True)


class Handler(BaseHTTPRequestHandler):
    server_version = f"drover-agent/{VERSION}"
    protocol_version = "HTTP/1.1"

    def _send(self, code, body, ctype):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Agent-Version", VERSION)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _route(self):
        path = self.path.split("?", 1)[0]
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
            if not healthy:
                body["reason"] = "this release is broken on purpose"
            self._send(200 if healthy else 500, json.dumps(body, separators=(",", ":")) + "\n", "application/json")
        elif path == "/":
            self._send(200, self._hello() + "\n", "text/plain; charset=utf-8")
        else:
            self._not_found(path)

    def _hello(self):
        text = f"agent {VERSION}"
        if TENANT:
            text += f" tenant {TENANT}"
        if COLOR:
            text += f" color {COLOR}"
        return text

    def _not_found(self, path):
        self._send(404, json.dumps({"error": "not found", "path": path}, separators=(",", ":")) + "\n", "application/json")

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._route()

    def do_HEAD(self):  # noqa: N802
        self._route()

    def do_POST(self):  # noqa: N802
        # The body is read whole before answering: a body left unread would be
        # taken for the next request on a kept-alive connection.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            self._send(413, f"a body of 0 to {MAX_BODY} bytes with Content-Length\n", "text/plain; charset=utf-8")
            return
        received = len(self.rfile.read(length))
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, f"{self._hello()} received {received} bytes\n", "text/plain; charset=utf-8")
        else:
            self._not_found(path)

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

    log(f"listening on {args.bind}:{port} tenant={TENANT or '-'} color={COLOR or '-'}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
