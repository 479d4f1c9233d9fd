"""Subcommands for running on a real machine: ``doctor``, ``demo``, ``service install``.

- ``wasi-hw doctor [--json] [--cache-dir DIR]``: every check of `wasi_hw.apps._doctor` with its fix;
  exit 1 when one fails (a driver needing it would not run), else 0.
- ``wasi-hw demo [--rounds N | --forever] [--json]``: the demo kernel file on simulated
  devices — the one installed with the package (a wheel carries it, `setup.py`), else the
  checkout's ``drivers/demo.kernel.toml``.
- ``wasi-hw service install KERNEL.toml [--user U] [--name N] [--root DIR] [--no-start]``
  (or ``--exec 'ARGS…'`` for any other wasi-hw command line, e.g. a fleet node): writes
  ``/etc/systemd/system/wasi-hw-<name>.service`` and, when the kernel file's drivers are
  granted real USB devices or I2C buses, ``/etc/udev/rules.d/70-wasi-hw-<name>.rules``
  (`wasi_hw.apps._service`); then reloads udev and systemd and enables the unit (``--no-start``,
  or a ``--root`` other than ``/``: prints those commands instead). ``--print`` shows the
  files without writing anything.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
from pathlib import Path

from wasi_hw import UserError

__all__ = ["register", "demo_kernel_file"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check this machine for I2C, USB and cache problems",
                       description="Check i2c-dev, bus permissions, usbfs, vhci-hcd, the AoT "
                                   "cache and the engine; name the fix for each problem.")
    p.add_argument("--json", action="store_true", help="one JSON object per check")
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="AoT cache directory")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("demo", help="run the demo kernel on simulated devices")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--rounds", type=int, metavar="N", help="stop after N polls of every driver")
    g.add_argument("--forever", action="store_true", help="run until Ctrl-C / SIGTERM")
    p.add_argument("--json", action="store_true", help="events as JSON lines on stdout")
    p.set_defaults(func=_cmd_demo)

    s = sub.add_parser("service", help="run a kernel as a systemd service")
    ssub = s.add_subparsers(dest="service_command", metavar="COMMAND")
    s.set_defaults(func=lambda a: (s.print_help(), 2)[1])
    p = ssub.add_parser("install", help="write (and enable) a systemd unit and its udev rule")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("kernel_file", nargs="?", type=Path, metavar="KERNEL.toml")
    what.add_argument("--exec", dest="exec_args", metavar="'ARGS…'",
                      help="run this wasi-hw command line instead (e.g. a fleet node)")
    p.add_argument("--user", default=None,
                   help="unprivileged user to run as (default: $SUDO_USER, else you)")
    p.add_argument("--name", help="unit name: wasi-hw-NAME.service (default: the file's stem)")
    p.add_argument("--group", dest="groups", action="append", default=None, metavar="GROUP",
                   help="supplementary group (repeatable; default: i2c plugdev)")
    p.add_argument("--root", type=Path, default=Path("/"), help="install under this root")
    p.add_argument("--no-start", action="store_true", help="write the files only")
    p.add_argument("--print", dest="print_only", action="store_true",
                   help="print the unit and the udev rule, write nothing")
    p.set_defaults(func=_cmd_service_install)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .._doctor import diagnose, format_checks

    checks = diagnose(cache_dir=args.cache_dir)
    if args.json:
        for c in checks:
            print(json.dumps(c.as_dict()))
    else:
        print(format_checks(checks))
    return 1 if any(c.status == "fail" for c in checks) else 0


def demo_kernel_file() -> Path:
    """The demo kernel file: packaged with the wheel, else the checkout's."""
    import wasi_hw

    here = Path(wasi_hw.__file__).resolve().parent    # the demo sits beside the core
    for candidate in (here / "demo" / "drivers" / "demo.kernel.toml",
                      here.parent / "drivers" / "demo.kernel.toml"):
        if candidate.exists():
            return candidate
    raise UserError("the demo is not part of this installation (a wheel built without "
                    "`wasi-hw build` first leaves it out)")


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._main import main

    argv = ["kernel", "run", str(demo_kernel_file())]
    if args.rounds:
        argv += ["--rounds", str(args.rounds)]
    if args.forever:
        argv.append("--forever")
    if args.json:
        argv.append("--json")
    return main(argv)


def _cmd_service_install(args: argparse.Namespace) -> int:
    from .._service import DEFAULT_GROUPS, install, kernel_command, render_udev, render_unit

    user = args.user or os.environ.get("SUDO_USER") or getpass.getuser()
    manifests: tuple = ()
    if args.kernel_file is not None:
        from wasi_hw.kernel import load_kernel_file

        plan = load_kernel_file(args.kernel_file)
        name = args.name or plan.path.name.split(".")[0]
        command = kernel_command(plan.path, name)
        if not (plan.i2c_sim or plan.usb_sim):     # simulated devices need no device rights
            manifests = plan.manifests
    else:
        if not args.name:
            raise UserError("--exec needs --name (the unit is wasi-hw-NAME.service)")
        name = args.name
        command = shlex.split(args.exec_args)
        if command[:1] == ["wasi-hw"]:
            command = command[1:]
    groups = tuple(args.groups) if args.groups else DEFAULT_GROUPS
    if user == "root":
        raise UserError("--user root: a service runs as an unprivileged user "
                        "(e.g. --user pi); it gets the bus groups through the unit")
    if args.print_only:
        print(render_unit(command, name=name, user=user, groups=groups), end="")
        rules = render_udev(manifests)
        if rules:
            print("\n# ---- udev rule ----\n" + rules, end="")
        return 0
    activate = not args.no_start and args.root == Path("/")
    done = install(command, name=name, user=user, manifests=manifests, root=args.root,
                   groups=groups, activate=activate)
    print(f"wrote {done.unit}")
    if done.udev is not None:
        print(f"wrote {done.udev}")
    if activate:
        print(f"enabled and started {done.unit.name}; logs: journalctl -u {done.unit.name} -f")
    else:
        print("to activate:")
        for cmd in done.commands:
            print("  sudo " + " ".join(cmd))
    return 0
