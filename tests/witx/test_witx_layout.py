"""Layout: known preview1 sizes, and properties over generated records."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from wasi_hw.witx import field_offsets, layout, load, parse, payload_offset

from pathlib import Path

WITX = Path(__file__).resolve().parents[2] / "witx"

KNOWN_PREVIEW1 = {  # from wasi-libc's api.h static asserts
    "iovec": (8, 4), "ciovec": (8, 4), "dirent": (24, 8), "fdstat": (24, 8),
    "filestat": (64, 8), "event": (32, 8), "event_fd_readwrite": (16, 8),
    "subscription_clock": (32, 8), "subscription_fd_readwrite": (4, 4),
    "subscription_u": (40, 8), "subscription": (48, 8), "prestat_dir": (4, 4),
    "prestat": (8, 4), "errno": (2, 2), "rights": (8, 8), "fd": (4, 4), "filetype": (1, 1),
}


def test_preview1_layouts(preview1_dir):
    doc = load(preview1_dir / "wasi_snapshot_preview1.witx")
    for name, (size, align) in KNOWN_PREVIEW1.items():
        lay = layout(doc.typenames[name])
        assert (lay.size, lay.align) == (size, align), name
    assert field_offsets(doc.typenames["event"]) == [0, 8, 10, 16]
    assert field_offsets(doc.typenames["subscription"]) == [0, 8]
    assert payload_offset(doc.typenames["subscription_u"]) == 8
    assert field_offsets(doc.typenames["filestat"]) == [0, 8, 16, 24, 32, 40, 48, 56]


def test_project_layouts():
    usb = load(WITX / "wasi_usb.witx")
    assert (layout(usb.typenames["filter"]).size, field_offsets(usb.typenames["filter"])) == \
        (16, [0, 1, 2, 4, 8, 12])
    assert layout(usb.typenames["device_info"]).size == 12
    assert layout(usb.typenames["iso_packet"]).size == 12
    i2c = load(WITX / "wasi_i2c.witx")
    assert field_offsets(i2c.typenames["operation"]) == [0, 4, 8]


# ---- properties -------------------------------------------------------------------------
SCALARS = {"u8": "B", "s8": "b", "u16": "H", "s16": "h", "u32": "I", "s32": "i", "u64": "Q",
           "s64": "q", "f64": "d", "char8": "B"}
WIDTH = {"B": 1, "b": 1, "H": 2, "h": 2, "I": 4, "i": 4, "Q": 8, "q": 8, "d": 8}

field_types = st.lists(st.sampled_from(sorted(SCALARS) + ["nested"]), min_size=1, max_size=8)


def _spell(t):
    return "(@witx char8)" if t == "char8" else t


def _record_src(types, nested_types):
    inner = " ".join(f"(field $n{i} {_spell(t)})" for i, t in enumerate(nested_types))
    fields = " ".join(f"(field $f{i} {'$inner' if t == 'nested' else _spell(t)})"
                      for i, t in enumerate(types))
    return f"(typename $inner (record {inner}))\n(typename $r (record {fields}))"


@settings(max_examples=150, deadline=None)
@given(field_types, st.lists(st.sampled_from(sorted(SCALARS)), min_size=1, max_size=4))
def test_record_layout_properties(types, nested_types):
    doc = parse(_record_src(types, nested_types))
    rec = doc.typenames["r"]
    lay = layout(rec)
    offs = field_offsets(rec)
    fields = rec.type.fields
    prev_end = 0
    for f, off in zip(fields, offs):
        fl = layout(f.type)
        assert off % fl.align == 0          # aligned
        assert off >= prev_end               # no overlap, in order
        assert off - prev_end < fl.align     # minimal padding
        prev_end = off + fl.size
    assert lay.align == max(layout(f.type).align for f in fields)
    assert lay.size % lay.align == 0 and prev_end <= lay.size < prev_end + lay.align


def _c_format(doc, name):
    """The same record as a native-aligned C struct format ('@'), computed by `struct`."""
    rec = doc.typenames[name].type
    out = ""
    for f in rec.fields:
        t = f.type
        out += _c_format(doc, "inner") if getattr(t, "name", None) == "inner" else \
            SCALARS[t.name]
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(sorted(SCALARS)), min_size=1, max_size=10), st.data())
def test_record_matches_c_layout_and_roundtrips(types, data):
    """Offsets equal the C ABI's (struct's native alignment on this 64-bit host), and
    values packed at those offsets read back unchanged."""
    doc = parse(_record_src(types, ["u8"]))
    rec = doc.typenames["r"]
    fmt = "".join(SCALARS[t] for t in types)
    # C layout with trailing padding to the struct alignment
    align = max(WIDTH[c] for c in fmt)
    c_size = struct.calcsize("@" + fmt + f"0{'Q' if align == 8 else {1: 'B', 2: 'H', 4: 'I'}[align]}")
    assert layout(rec).size == c_size
    c_offsets = [struct.calcsize("@" + fmt[:i] + fmt[i] ) - WIDTH[fmt[i]] for i in range(len(fmt))]
    assert field_offsets(rec) == c_offsets
    values = []
    for c in fmt:
        if c == "d":
            values.append(data.draw(st.floats(allow_nan=False)))
        else:
            bits = WIDTH[c] * 8
            lo, hi = (0, 2**bits - 1) if c.isupper() else (-(2**(bits - 1)), 2**(bits - 1) - 1)
            values.append(data.draw(st.integers(lo, hi)))
    buf = bytearray(layout(rec).size)
    for c, off, v in zip(fmt, field_offsets(rec), values):
        struct.pack_into("<" + c, buf, off, v)
    got = [struct.unpack_from("<" + c, buf, off)[0] for c, off in zip(fmt, field_offsets(rec))]
    assert got == values


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["u8", "u16", "u32", "u64", None]), min_size=1, max_size=6),
       st.sampled_from(["u8", "u16", "u32"]))
def test_variant_layout_properties(payloads, tag):
    cases = " ".join(f"(case $c{i}{' ' + p if p else ''})" for i, p in enumerate(payloads))
    doc = parse(f"(typename $v (variant (@witx tag {tag}) {cases}))")
    v = doc.typenames["v"]
    lay = layout(v)
    tag_size = {"u8": 1, "u16": 2, "u32": 4}[tag]
    payload_align = max([layout(c.type).align for c in v.type.cases if c.type], default=1)
    off = payload_offset(v)
    assert off >= tag_size and off % payload_align == 0
    assert lay.align == max(tag_size, payload_align)
    assert lay.size % lay.align == 0
    for c in v.type.cases:
        if c.type is not None:
            assert off + layout(c.type).size <= lay.size
