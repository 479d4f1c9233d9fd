"""Pictures of a run: readings over time, and a trace's bus operations on a timeline.

- `plot_readings(events, path)`: every numeric field of every driver's reports against the
  kernel's time (seconds), one panel per driver and field (at most 12), written as an image
  whose format follows the file name (``.png``, ``.svg``, ``.pdf``). Returns the number of
  panels; no numeric reading at all is a `UserError`.
- `plot_trace(records, path)`: one lane per I2C target (``bus addr``) or USB endpoint,
  one mark per operation at its ``t_ns`` (writes, reads, delays, errors in red).
- matplotlib is optional (``pip install 'wasi-hw[plot]'``); without it both raise a
  `UserError` saying so. The Agg backend is used: no display is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from wasi_hw import UserError

__all__ = ["plot_readings", "plot_trace", "reading_series"]

_MAX_PANELS = 12


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'wasi-hw[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def reading_series(events: Iterable[Any]) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(driver, field) → [(seconds, value)] for every numeric field of every report."""
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for ev in events:
        if getattr(ev, "kind", None) != "report" or not isinstance(ev.data, Mapping):
            continue
        for key, value in ev.data.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                series.setdefault((ev.driver, str(key)), []).append((ev.time, float(value)))
    return series


def _save(fig: Any, plt: Any, path: Path) -> None:
    try:
        fig.savefig(path)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot write the plot {path}: {err}") from None
    finally:
        plt.close(fig)


def plot_readings(events: Iterable[Any], path: str | Path, *, title: str = "") -> int:
    """Readings over time (see the module docstring); returns the number of panels."""
    series = reading_series(events)
    if not series:
        raise UserError(f"--plot {path}: no numeric reading to plot")
    plt = _pyplot()
    keys = sorted(series)[:_MAX_PANELS]
    fig, axes = plt.subplots(len(keys), 1, sharex=True, squeeze=False,
                             figsize=(8, 1.6 + 1.8 * len(keys)))
    for ax, key in zip(axes[:, 0], keys):
        xs, ys = zip(*series[key])
        ax.plot(xs, ys, marker="o", markersize=3)
        ax.set_ylabel(f"{key[0]}\n{key[1]}", fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, plt, Path(path))
    return len(keys)


def _lane(rec: Mapping[str, Any]) -> str:
    op = rec.get("op", "")
    if op == "i2c.transaction":
        return f"{rec.get('bus')} {rec.get('address', 0):#04x}"
    if op.startswith("i2c."):
        return "i2c " + op[4:]
    args = rec.get("args") or {}
    if "endpoint" in args:
        return f"usb ep {args['endpoint']:#04x}"
    return "usb " + op[4:]


def plot_trace(records: list[Mapping[str, Any]], path: str | Path, *, title: str = "") -> int:
    """Bus operations on a timeline (see the module docstring); returns the lane count."""
    if not records:
        raise UserError(f"--plot {path}: the trace has no records")
    plt = _pyplot()
    lanes = sorted({_lane(r) for r in records})
    row = {name: i for i, name in enumerate(lanes)}
    fig, ax = plt.subplots(figsize=(10, 1.5 + 0.45 * len(lanes)))
    kinds = {"write": ("tab:blue", "|"), "read": ("tab:green", "|"), "other": ("tab:gray", "."),
             "error": ("tab:red", "x")}
    shown: set[str] = set()
    for rec in records:
        ops = rec.get("ops") or []
        kind = ("error" if "error" in rec else
                "read" if any("read" in o for o in ops) or "_in" in rec.get("op", "") else
                "write" if ops or "_out" in rec.get("op", "") else "other")
        colour, marker = kinds[kind]
        ax.scatter([rec.get("t_ns", 0) / 1e6], [row[_lane(rec)]], c=colour, marker=marker, s=60,
                   label=None if kind in shown else kind)
        shown.add(kind)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_xlabel("time (ms)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save(fig, plt, Path(path))
    return len(lanes)
