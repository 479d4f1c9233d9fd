"""Build hook: the demo ships inside the wheel (everything else is in pyproject.toml).

A non-editable build copies ``drivers/demo.kernel.toml``, every ``drivers/*/manifest.toml``
and the ``.wasm`` files they name (``build/wasm/``, made by ``wasi-hw build``; wasm is the
same on every machine) into ``wasi_hw/demo/`` with the checkout's relative layout, so the
manifests' ``wasm = "../../build/wasm/NAME.wasm"`` resolve unchanged. A driver whose
``.wasm`` is missing is left out with a warning (``wasi-hw build`` first).
"""

import shutil
import sys
import tomllib
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithDemo(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return                    # an editable install runs the demo from the checkout
        out = Path(self.build_lib) / "wasi_hw" / "demo"
        demo = HERE / "drivers" / "demo.kernel.toml"
        if not demo.exists():
            return
        missing = []
        (out / "drivers").mkdir(parents=True, exist_ok=True)
        shutil.copy2(demo, out / "drivers" / demo.name)
        for manifest in sorted((HERE / "drivers").glob("*/manifest.toml")):
            wasm_rel = tomllib.loads(manifest.read_text()).get("wasm")
            wasm = (manifest.parent / wasm_rel).resolve() if wasm_rel else None
            if wasm is None or not wasm.exists():
                missing.append(manifest.parent.name)
                continue
            dst = out / manifest.relative_to(HERE)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(manifest, dst)
            wasm_dst = out / wasm.relative_to(HERE)
            wasm_dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(wasm, wasm_dst)
        if missing:
            print(f"warning: demo drivers without a built .wasm left out of the wheel: "
                  f"{', '.join(missing)} (run `wasi-hw build` first)", file=sys.stderr)


setup(cmdclass={"build_py": BuildPyWithDemo})
