"""Real reverse proxies for the forward-auth tests: nginx and Caddy, each started unprivileged on a
free loopback port with its own prefix/config directory and logs in a temporary directory, with the
configuration that docs/protect-an-app.md gives (read from the document, so the two cannot drift),
in front of a tiny upstream app that shows the identity headers it received."""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "protect-an-app.md"
IDENTITY = ("Remote-User", "Remote-Email", "Remote-Name", "Remote-Groups", "Remote-Practice")


def doc_snippet(language: str) -> str:
    """The first fenced block of ``language`` in docs/protect-an-app.md."""
    match = re.search(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)
    if match is None:
        raise AssertionError(f"docs/protect-an-app.md has no {language} block")
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 15  # waiting for a process to listen, not moving a clock
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the proxy exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the proxy did not listen on {port}: {log.read_text() if log.exists() else ''}")


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        rows = "".join(
            f'<li id="{name.lower()}">{name}: {html.escape(self.headers.get(name, ""))}</li>' for name in IDENTITY
        )
        body = (
            f'<!doctype html><html lang="en"><title>File share</title><main><h1>File share {html.escape(self.path)}</h1>'
            f"<ul>{rows}</ul></main></html>"
        )
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args) -> None:  # quiet
        pass


@contextmanager
def upstream_app() -> Iterator[int]:
    """The protected app: a page showing the Remote-* headers it received. Yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Hosts:
    """The test's names for the document's hosts and ports."""

    app: str  # files.riverside.example
    twofold: str  # signin.riverside.example
    twofold_port: int  # 127.0.0.1:8000
    upstream_port: int  # 127.0.0.1:8080
    proxy_port: int  # what the proxy listens on (80 / 443 in the document)


def _substituted(text: str, hosts: Hosts) -> str:
    return (
        text.replace("files.riverside.example", hosts.app)
        .replace("signin.riverside.example", hosts.twofold)
        .replace("127.0.0.1:8000", f"127.0.0.1:{hosts.twofold_port}")
        .replace("127.0.0.1:8080", f"127.0.0.1:{hosts.upstream_port}")
    )


@contextmanager
def nginx(tmp: Path, hosts: Hosts) -> Iterator[str]:
    """nginx with the document's servers on 127.0.0.1:<proxy_port>; yields the error log's path."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = tmp / "nginx"
    (prefix / "logs").mkdir(parents=True)
    servers = _substituted(doc_snippet("nginx"), hosts).replace("listen 80;", f"listen 127.0.0.1:{hosts.proxy_port};")
    temp = "".join(
        f"{kind}_temp_path {prefix}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"daemon off;\nmaster_process off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log warn;\nevents {{ worker_connections 256; }}\n"
        f"http {{\naccess_log off;\n{temp}{servers}\n}}\n"
    )
    log = prefix / "logs" / "error.log"
    with open(prefix / "logs" / "stderr.log", "w") as stderr:
        process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf), "-e", str(log)], stderr=stderr)
    try:
        wait_for_port(hosts.proxy_port, process, prefix / "logs" / "stderr.log")
        yield str(log)
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def caddy(tmp: Path, hosts: Hosts) -> Iterator[str]:
    """Caddy with the document's sites as plain HTTP on 127.0.0.1:<proxy_port>; yields its log's path."""
    binary = shutil.which("caddy") or "/usr/bin/caddy"
    home = tmp / "caddy"
    home.mkdir()
    sites = _substituted(doc_snippet("caddyfile"), hosts)
    for host in (hosts.app, hosts.twofold):
        sites = sites.replace(f"{host} {{", f"http://{host}:{hosts.proxy_port} {{")
    config = home / "Caddyfile"
    config.write_text(
        f"{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {home}/data\n\tdefault_bind 127.0.0.1\n}}\n\n{sites}"
    )
    log = home / "caddy.log"
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "cfg")}
    with open(log, "w") as output:
        process = subprocess.Popen(
            [binary, "run", "--config", str(config), "--adapter", "caddyfile"], stdout=output, stderr=output, env=env
        )
    try:
        wait_for_port(hosts.proxy_port, process, log)
        yield str(log)
    finally:
        process.terminate()
        process.wait(10)
