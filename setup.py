"""Build hook: the demo ships inside the wheel (everything else is in pyproject.toml).

The sdist carries the kernel file and manifests (MANIFEST.in) and, put in by `SdistWithDrivers`
at their place in the tree, the ``.wasm`` files they name (setuptools keeps ``build/`` out of
an sdist otherwise) — so a Raspberry Pi builds the wheel without a Rust toolchain.
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
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent


def _driver_wasm() -> list[tuple[Path, Path]]:
    """(manifest, the .wasm it names) for every driver manifest whose .wasm exists."""
    found = []
    for manifest in sorted((HERE / "drivers").glob("*/manifest.toml")):
        wasm_rel = tomllib.loads(manifest.read_text()).get("wasm")
        wasm = (manifest.parent / wasm_rel).resolve() if wasm_rel else None
        found.append((manifest, wasm if wasm is not None and wasm.exists() else None))
    return found


class SdistWithDrivers(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        for _, wasm in _driver_wasm():
            if wasm is not None:
                dst = Path(base_dir) / wasm.relative_to(HERE)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(wasm, dst)


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
        for manifest, wasm in _driver_wasm():
            if wasm is None:
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


setup(cmdclass={"build_py": BuildPyWithDemo, "sdist": SdistWithDrivers})
