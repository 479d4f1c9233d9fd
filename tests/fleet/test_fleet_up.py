"""The README's fleet flow, line by line: `fleet up`, deploy, ls, move, kill a node, ls, logs.

The `comfort` module (no hardware) is deployed to node3 and moved to node1: after each, the
test waits for a report of it there, a dew point computed from sensors on other nodes.

`fleet up` runs in the background on a free port (the README's 4222 may be taken); the other
commands reach it through ``WASI_HW_NATS``. After the kill, the test waits on the registry
(node lost, modules re-placed) before the next `ls`, as a person reading the README would.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wasi_hw.fleet import Registry, connect, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _flow() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## A fleet"):]
    block = re.search(r"```shell\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


@pytest.mark.engine   # `fleet up` starts nats-server
def test_readme_fleet_flow(tmp_path, build_drivers):
    build_drivers("bme280", "sht3x", "hd44780", "comfort")
    for name in ("build", "drivers"):
        (tmp_path / name).symlink_to(ROOT / name)
    port = free_port()
    work = tmp_path / "fleet"
    env = dict(os.environ, WASI_HW_NATS=f"nats://127.0.0.1:{port}", WASI_HW_LATTICE="default")
    lines = _flow()
    assert lines[0].startswith("wasi-hw fleet up --nodes 3")
    up_args = shlex.split(lines[0].split("&")[0])[1:]
    up_args = [str(work) if a == "/tmp/wasihw-fleet" else a for a in up_args]
    up = subprocess.Popen([sys.executable, "-m", "wasi_hw", *up_args, "--port", str(port)],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True)
    outputs: dict[str, str] = {}
    try:
        first = up.stdout.readline()
        assert "3 nodes" in first, first + up.stdout.read()
        pids = [int(p) for p in re.search(r"pids ([\d ]+)\)", first).group(1).split()]
        server_pid = int(re.search(r"\(pid (\d+)\)", first).group(1))

        async def nodes_up():
            nc = await connect(env["WASI_HW_NATS"])
            r = await Registry.open(nc, "default")
            await wait_for(r, lambda v: all((v.get(f"node.node{i}") or {}).get("state") == "up"
                                            for i in (1, 2, 3)), 60)
            await nc.close()
        asyncio.run(nodes_up())
        for line in lines[1:]:
            cmd = line.split("  #")[0].strip()
            if cmd.startswith("kill "):
                pid_file = Path(
                    re.search(r"cat (\S+)\)", cmd).group(1).replace("/tmp/wasihw-fleet", str(work))
                )
                os.kill(int(pid_file.read_text()), signal.SIGTERM)

                async def replaced():
                    nc = await connect(env["WASI_HW_NATS"])
                    r = await Registry.open(nc, "default")
                    await wait_for(r, lambda v: (v.get("node.node2") or {}).get("state") == "lost"
                                   and (v.get("mod.sht3x") or {}).get("node") == "node1"
                                   and (v.get("status.sht3x") or {}).get("node") == "node1"
                                   and (v.get("status.sht3x") or {}).get("state") == "running", 60)
                    await nc.close()
                asyncio.run(replaced())
                continue
            argv = [sys.executable, "-m", "wasi_hw", *shlex.split(cmd)[1:]]
            out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=120)
            refused = "refused" in line.split("#", 1)[-1] and "if" not in line.split("#", 1)[-1]
            assert out.returncode == (2 if refused else 0), (cmd, out.stdout, out.stderr)
            assert "Traceback" not in out.stderr
            outputs[cmd] = out.stdout + out.stderr
            if "comfort" in cmd:
                # comfort reports only a dew point it computed from a sensor's answer: a
                # report where it runs now (no sensor on node3) is an IMC call across nodes
                target = "node3" if " deploy " in cmd else cmd.split("--to ")[1].split()[0]

                async def comfort_reports(node: str = target) -> None:
                    nc = await connect(env["WASI_HW_NATS"])
                    r = await Registry.open(nc, "default")
                    await wait_for(r, lambda v: (st := v.get("status.comfort") or {}).get("node")
                                   == node and (v.get("mod.comfort") or {}).get("node") == node
                                   and "dewpoint_c" in (st.get("last_report") or {}), 60)
                    await nc.close()
                asyncio.run(comfort_reports())
        ls_lines = [c for c in outputs if c == "wasi-hw fleet ls"]
        assert ls_lines
        final_ls = outputs["wasi-hw fleet ls"]   # the last one (after the kill)
        assert re.search(r"node2\s+lost", final_ls), final_ls
        assert re.search(r"sht3x\s+node1\s+running\s+3", final_ls), final_ls
        assert re.search(r"lcd\s+-\s+", final_ls), final_ls     # pinned to the lost node
        assert "node3 cannot grant i2c-1" in outputs["wasi-hw fleet move sht3x --to node3"]
        assert "sht3x" in outputs["wasi-hw fleet logs sht3x"]
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(timeout=30)
    # fleet up stopped everything it started
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in [*pids, server_pid]):
        time.sleep(0.05)
    assert not any(_alive(p) for p in [*pids, server_pid])
