"""A real `nats-server` process, started and stopped by this process.

`NatsServer` writes a config file into its own work directory, starts Debian's
`nats-server` on a free loopback port and waits until it is ready: the client port accepts
connections and, with JetStream on, the monitoring endpoint `/healthz` answers 200 (in a
cluster that means a meta leader was elected). `stop()` sends SIGTERM to the PID it started
and SIGKILL after a grace period; `kill()` sends SIGKILL at once; `restart()` starts it again
on the same ports and the same JetStream store. Nothing here talks the NATS protocol.
A missing binary is a `NatsServerError` that says how to install it; so is a server that
exits or is not ready by the deadline (with the tail of its log).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Sequence

from wasi_hw import UserError

__all__ = ["NatsServer", "NatsServerError", "free_port", "start_cluster"]

_INSTALL_HINT = "nats-server not found on PATH: apt-get install nats-server"


class NatsServerError(UserError):
    """nats-server is missing, would not start, or was not ready in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _quote(value: str) -> str:
    return json.dumps(value)  # nats config accepts JSON-style quoted strings


class NatsServer:
    """One nats-server process on loopback.

    Options: `jetstream` (store in `store_dir`, default `<workdir>/js`), `js_domain`,
    `cluster_name` + `routes` (other servers' `route_url`s), `leaf_listen` (accept leaf nodes
    on `leaf_url`), `leaf_remotes` (hub leaf URLs this server connects to as a leaf),
    `user` / `password` (client authorization; `url` then carries them). Ports are chosen
    once, at construction, and kept across `restart()`.
    """

    def __init__(self, *, binary: str | None = None, host: str = "127.0.0.1",
                 port: int | None = None, jetstream: bool = True,
                 store_dir: str | os.PathLike | None = None, js_domain: str | None = None,
                 server_name: str | None = None, cluster_name: str | None = None,
                 cluster_port: int | None = None, routes: Sequence[str] = (),
                 leaf_listen: bool = False, leaf_port: int | None = None,
                 leaf_remotes: Sequence[str] = (), user: str | None = None,
                 password: str | None = None, workdir: str | os.PathLike | None = None,
                 ready_timeout: float = 15.0) -> None:
        self.binary = binary
        self.host = host
        self.port = port or free_port(host)
        self.monitor_port = free_port(host)
        self.jetstream = jetstream
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="wasihw-nats-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.store_dir = Path(store_dir) if store_dir else self.workdir / "js"
        self.js_domain = js_domain
        self.server_name = server_name or f"n{self.port}"
        self.cluster_name = cluster_name
        self.cluster_port = (cluster_port or free_port(host)) if cluster_name else None
        self.routes = list(routes)
        self.leaf_port = (leaf_port or free_port(host)) if leaf_listen else None
        self.leaf_remotes = list(leaf_remotes)
        self.user = user
        self.password = password
        self.ready_timeout = ready_timeout
        self._proc: subprocess.Popen | None = None
        self._log = self.workdir / "nats-server.log"

    # -- addresses ------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Client URL, with credentials when the server has them."""
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"nats://{auth}{self.host}:{self.port}"

    @property
    def route_url(self) -> str:
        if self.cluster_port is None:
            raise NatsServerError("this server has no cluster listener (cluster_name not set)")
        return f"nats-route://{self.host}:{self.cluster_port}"

    @property
    def leaf_url(self) -> str:
        if self.leaf_port is None:
            raise NatsServerError("this server accepts no leaf nodes (leaf_listen not set)")
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"nats-leaf://{auth}{self.host}:{self.leaf_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- config -----------------------------------------------------------------------
    def config_text(self) -> str:
        """The nats-server config this instance runs with."""
        lines = [
            f"server_name: {_quote(self.server_name)}",
            f"listen: {_quote(f'{self.host}:{self.port}')}",
            f"http: {_quote(f'{self.host}:{self.monitor_port}')}",
            f"pid_file: {_quote(str(self.workdir / 'nats-server.pid'))}",
        ]
        if self.user:
            lines.append(f"authorization {{ user: {_quote(self.user)}, "
                         f"password: {_quote(self.password or '')} }}")
        if self.jetstream:
            js = [f"store_dir: {_quote(str(self.store_dir))}"]
            if self.js_domain:
                js.append(f"domain: {_quote(self.js_domain)}")
            lines.append("jetstream { " + ", ".join(js) + " }")
        if self.cluster_name:
            routes = ", ".join(_quote(r) for r in self.routes)
            lines.append(f"cluster {{ name: {_quote(self.cluster_name)}, "
                         f"listen: {_quote(f'{self.host}:{self.cluster_port}')}, "
                         f"routes: [{routes}] }}")
        leaf: list[str] = []
        if self.leaf_port is not None:
            leaf.append(f"listen: {_quote(f'{self.host}:{self.leaf_port}')}")
            if self.user:
                leaf.append(f"authorization {{ user: {_quote(self.user)}, "
                            f"password: {_quote(self.password or '')} }}")
        if self.leaf_remotes:
            remotes = ", ".join("{ url: " + _quote(u) + " }" for u in self.leaf_remotes)
            leaf.append(f"remotes: [{remotes}]")
        if leaf:
            lines.append("leafnodes { " + ", ".join(leaf) + " }")
        return "\n".join(lines) + "\n"

    def _binary(self) -> str:
        found = shutil.which(self.binary or "nats-server")
        if found is None:
            raise NatsServerError(_INSTALL_HINT)
        return found

    # -- lifecycle --------------------------------------------------------------------
    def start(self, wait: bool = True) -> "NatsServer":
        """Start the process; with `wait`, return only when it is ready (see `wait_ready`)."""
        if self.running:
            return self
        binary = self._binary()
        conf = self.workdir / "nats-server.conf"
        conf.write_text(self.config_text())
        log = open(self._log, "ab")
        try:
            self._proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        finally:
            log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the client port accepts and (JetStream on) `/healthz` answers 200."""
        deadline = time.monotonic() + (self.ready_timeout if timeout is None else timeout)
        stage = "client port"
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise NatsServerError(f"nats-server exited (code {code}) before it was ready: "
                                      f"{self.log_tail()}")
            if stage == "client port":
                if _port_open(self.host, self.port):
                    stage = "jetstream" if self.jetstream else "done"
            if stage == "jetstream":
                if self._healthy():
                    stage = "done"
            if stage == "done":
                return
            time.sleep(0.005)
        raise NatsServerError(f"nats-server on {self.host}:{self.port} not ready "
                              f"({stage}) after the deadline: {self.log_tail()}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self._monitor_url("/healthz"), timeout=0.5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _monitor_url(self, path: str) -> str:
        return f"http://{self.host}:{self.monitor_port}{path}"

    def monitor(self, endpoint: str) -> Any:
        """JSON from a monitoring endpoint, e.g. ``monitor("varz")`` or ``"leafz"``."""
        with urllib.request.urlopen(self._monitor_url("/" + endpoint.lstrip("/")),
                                    timeout=2.0) as r:
            return json.loads(r.read())

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the started PID, SIGKILL after `grace` seconds; no-op when not running."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the started PID at once (a crash, for fault tests)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        self._proc = None

    def restart(self, wait: bool = True) -> "NatsServer":
        """Stop (if running) and start again on the same ports and store."""
        self.stop()
        return self.start(wait=wait)

    def close(self) -> None:
        """Stop and remove the work directory if this instance created it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self._log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def __enter__(self) -> "NatsServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"NatsServer({self.host}:{self.port}, {state})"


def start_cluster(size: int = 3, *, name: str = "wasihw", timeout: float = 30.0,
                  **options: Any) -> list[NatsServer]:
    """`size` servers routed to each other, all started, returned once all are ready.

    JetStream in a cluster is ready only after a meta leader is elected (about 5 s on
    loopback), so the servers are started first and waited for together, then until every
    server has its routes to all the others.
    """
    cluster_ports = [free_port() for _ in range(size)]
    servers = []
    for i, cport in enumerate(cluster_ports):
        routes = [f"nats-route://127.0.0.1:{p}" for j, p in enumerate(cluster_ports) if j != i]
        servers.append(NatsServer(cluster_name=name, cluster_port=cport, routes=routes,
                                  server_name=f"{name}-{i}", **options))
    try:
        for s in servers:
            s.start(wait=False)
        deadline = time.monotonic() + timeout
        for s in servers:
            s.wait_ready(max(0.1, deadline - time.monotonic()))
        for s in servers:           # and every route up (a full mesh): the cluster is whole
            while s.monitor("routez").get("num_routes", 0) < size - 1:
                if time.monotonic() > deadline:
                    raise NatsServerError(f"{s!r}: routes to all {size - 1} other servers not "
                                          f"up after {timeout} s: {s.log_tail()}")
                time.sleep(0.02)
    except BaseException:
        for s in servers:
            s.close()
        raise
    return servers


