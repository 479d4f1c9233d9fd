"""`wasi-hw doctor` on a real Linux kernel (QEMU): before and after loading i2c-dev, i2c-stub
and vhci-hcd, as root and judged for an unprivileged user — the real /dev and /sys."""

from __future__ import annotations

import json
import sys


def test_doctor_sees_what_the_kernel_has(run_in_vm, tmp_path):
    py = sys.executable
    judge = ("from wasi_hw.apps._doctor import diagnose; import json; "
             "print(json.dumps({c.name: c.status for c in diagnose(uid=65534, gids=[65534], "
             "engine=False, cache_dir='/tmp/aot')}))")
    script = f"""
{py} -m wasi_hw doctor --json --cache-dir /tmp/aot; echo "rc=$?"
echo ---
modprobe i2c-dev && modprobe i2c-stub chip_addr=0x76 && modprobe vhci-hcd
chmod 0660 /dev/i2c-*
{py} -m wasi_hw doctor --json --cache-dir /tmp/aot; echo "rc=$?"
echo ---
{py} -c "{judge}"
"""
    result = run_in_vm(script, 240)
    assert result.returncode == 0, result.output[-3000:]
    before, after, nobody = result.output.split("---\n")

    def checks(text):
        return {c["name"]: c for c in map(json.loads, text.splitlines()[:-1])}, text.split()[-1]

    b, rc = checks(before)
    assert rc == "rc=1" and b["i2c-dev"]["status"] == "fail" and "modprobe i2c-dev" in b["i2c-dev"]["fix"]
    assert b["vhci-hcd"]["status"] == "info" and b["engine"]["status"] == "ok"
    a, rc = checks(after)
    assert rc == "rc=0", after
    assert a["i2c-dev"]["status"] == "ok" and "i2c-0" in a["i2c-dev"]["detail"]
    assert a["i2c access"]["status"] == "ok" and a["vhci-hcd"]["status"] == "ok"
    other = json.loads(nobody.strip().splitlines()[-1])
    assert other["i2c access"] == "fail"          # root:root 0660: not for uid 65534
