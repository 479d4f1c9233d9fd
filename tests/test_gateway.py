"""`wasi-hw gateway`: module services over HTTP — in-process kernel and over NATS."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from wasi_hw.apps._gateway import Gateway
from wasi_hw.fleet import free_port
from wasi_hw.kernel import Backends, Kernel

sys.path.insert(0, str(Path(__file__).parent / "kernel"))
from imc_testing import imc_manifest
from kernel_testing import wat
from nats_testing import KernelNode


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture
def served(tmp_path):
    k = Kernel(Backends(), cache_dir=tmp_path / "aot", tick_ms=2)
    k.add(imc_manifest("provider", offer=["echo"], callers=["gateway"]), wat("imc_echo"))
    k.add(imc_manifest("private", offer=["secret"], callers=["someone"]), _secret())
    k.start()
    gw = Gateway(k.imc, port=0).start()
    host, port = gw.address
    yield k, f"http://{host}:{port}"
    gw.close()
    k.close()


def _secret() -> bytes:
    # the echo provider offering "secret" instead of "echo"
    text = (Path(__file__).parent / "kernel" / "wat" / "imc_echo.wat").read_text()
    import wasmtime

    return wasmtime.wat2wasm(
        text.replace('(data (i32.const 0) "echo")', '(data (i32.const 0) "secr")')
        .replace(
            "(i32.const 0) (i32.const 4) (i32.const 1024)",
            "(i32.const 0) (i32.const 6) (i32.const 1024)",
        )
        .replace('"secr"', '"secret"')
    )


@pytest.mark.wasm
def test_post_calls_the_service_get_lists_them(served):
    k, base = served
    assert _post(f"{base}/services/echo", b"\x30abc") == (200, b"\x31abc")
    assert _get(f"{base}/services") == {"services": {"echo": "local", "secret": "local"}}
    assert k.audit.for_driver("provider") == []


@pytest.mark.wasm
def test_errors_are_statuses_with_kinds(served):
    k, base = served
    code, body = _post(f"{base}/services/secret", b"x")
    assert code == 403 and json.loads(body)["error"] == "access"
    assert "'gateway'" in k.audit.for_driver("private")[-1]["why"]            # audited there
    code, body = _post(f"{base}/services/nobody", b"x")
    assert code == 503 and json.loads(body)["error"] == "unavailable"
    code, body = _post(f"{base}/services/echo", b"\x01" * 5000)
    assert code == 413 and json.loads(body)["error"] == "too_large"
    code, body = _post(f"{base}/services/echo", b"\xfd")       # the provider loops: deadline
    assert code == 502 and json.loads(body)["error"] == "provider_failed"
    code, _ = _post(f"{base}/services/echo?timeout_ms=zero", b"x")
    assert code == 400
    code, _ = _post(f"{base}/nothing", b"x")
    assert code == 404
    code, body = _post(f"{base}/services/no%20such.>", b"x")      # never a subject
    assert code == 400 and json.loads(body)["error"] == "invalid_argument"
    code, body = _post(f"{base}/services/echo", b"\0" * (64 * 1024 + 1))
    assert code == 413


def test_gateway_command_over_nats(nats_server, tmp_path):
    provider = KernelNode(
        {
            "nats": nats_server.url,
            "lattice": "gw",
            "modules": [
                {
                    "name": "provider",
                    "wat": "imc_echo",
                    "imc": {"offer": ["echo"], "callers": ["gateway"]},
                }
            ],
        }
    )
    port = free_port()
    gw = subprocess.Popen([sys.executable, "-m", "wasi_hw", "gateway", "--nats", nats_server.url,
                           "--lattice", "gw", "--port", str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 20
        while True:
            try:
                services = _get(f"{base}/services")
                break
            except OSError:
                assert time.monotonic() < end and gw.poll() is None, gw.stderr.read()
                time.sleep(0.1)
        assert services == {"services": {"echo": "remote"}}
        assert _post(f"{base}/services/echo", b"\x41hi") == (200, b"\x42hi")
        code, body = _post(f"{base}/services/ghost", b"")
        assert code == 503 and json.loads(body)["error"] == "unavailable"
    finally:
        gw.terminate()
        gw.wait(10)
        provider.close()


def test_gateway_needs_something_to_serve():
    out = subprocess.run(
        [sys.executable, "-m", "wasi_hw", "gateway"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr and "--nats" in out.stderr
