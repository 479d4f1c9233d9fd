"""The SDK on its real path: `hello.wasm` (built by `wasi-hw build`) run by the kernel against
a simulated bus, checking what reaches the wire and what comes back.

Covers what native tests cannot: `I2cBus::transaction_at` lowering its operation array into
guest memory for 7- and 10-bit targets, `config_get` parsing (`address`, `ten_bit`),
`Report`'s CBOR reaching the host decoded, `info!` logging, the errno → `i2c::Error` mapping
of a NACK, and a malformed config value failing `init` with an error that names the key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wasi_hw.host import Read, SimI2cBackend
from wasi_hw.host.devices import I2cDevice
from wasi_hw.kernel import Backends, load_manifest, run_driver

ROOT = Path(__file__).resolve().parents[2]


class Counter(I2cDevice):
    """Answers each read byte with the next value of a counter (starting at 0x2a)."""

    def __init__(self) -> None:
        super().__init__()
        self.next = 0x2A

    def read(self, last: bool) -> int:
        value, self.next = self.next, self.next + 1
        return value


@pytest.fixture(scope="module")
def hello(build_drivers) -> Path:
    return build_drivers("hello")["hello"]


def manifest(tmp_path: Path, wasm: Path, address: int, ten_bit: bool, config: dict[str, str]):
    lines = [
        'name = "hello"', f'wasm = "{wasm}"', "poll_interval_ms = 10", "[config]",
        *(f'{k} = "{v}"' for k, v in config.items()),
        "[[i2c]]", 'bus = "i2c-1"', f"addresses = [{address}]", f"ten_bit = {str(ten_bit).lower()}",
    ]
    path = tmp_path / "hello.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_manifest(path)


@pytest.mark.parametrize("address, ten_bit", [(0x50, False), (0x2A5, True)])
def test_transaction_reaches_the_wire_and_reports(hello, tmp_path, address, ten_bit):
    bus = SimI2cBackend(["i2c-1"])
    bus.attach("i2c-1", address, Counter(), ten_bit=ten_bit)
    m = manifest(tmp_path, hello, address, ten_bit,
                 {"address": hex(address), "ten_bit": str(ten_bit).lower()})
    result = run_driver(m, Backends(i2c=bus), polls=2, cache_dir=tmp_path / "aot")
    assert result.readings == [
        {"address": address, "byte": 0x2A},
        {"address": address, "byte": 0x2B},
    ]
    wire = [h for h in bus.history if h[1] == address]
    assert wire == [("i2c-1", address, ten_bit, (Read(1),), (b"\x2a",)),
                    ("i2c-1", address, ten_bit, (Read(1),), (b"\x2b",))]
    logs = [e.data for e in result.events if e.kind == "log"]
    assert any("hello: reading" in str(entry) for entry in logs), logs


def test_absent_target_is_nack_address_in_the_driver(hello, tmp_path):
    bus = SimI2cBackend(["i2c-1"])  # nothing attached at 0x50
    m = manifest(tmp_path, hello, 0x50, False, {"address": "0x50"})
    result = run_driver(m, Backends(i2c=bus), polls=1, cache_dir=tmp_path / "aot")
    assert result.readings == []
    errors = " ".join(str(e.data) + e.detail for e in result.events if e.kind in ("log", "error"))
    assert "poll failed: I2c(NackAddress)" in errors, errors


def test_malformed_config_fails_init_naming_the_key(hello, tmp_path):
    bus = SimI2cBackend(["i2c-1"])
    bus.attach("i2c-1", 0x50, Counter())
    m = manifest(tmp_path, hello, 0x50, False, {"address": "0x5g"})
    result = run_driver(m, Backends(i2c=bus), polls=1, cache_dir=tmp_path / "aot")
    assert result.readings == [] and not bus.history
    errors = " ".join(str(e.data) + e.detail for e in result.events if e.kind in ("log", "error"))
    assert 'init failed: Config(ConfigError { key: "address", kind: NotANumber })' in errors, errors
