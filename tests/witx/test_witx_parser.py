"""Loading and resolving the project's specs and WASI preview1's."""

import pytest

from wasi_hw.witx import (
    Builtin, EnumType, FlagsType, HandleType, ListType, PointerType, RecordType, StringType,
    TypeName, VariantType, WitxError, load, lower_document, parse, underlying,
)

from pathlib import Path

WITX = Path(__file__).resolve().parents[2] / "witx"


@pytest.mark.parametrize("name", ["typenames", "wasi_i2c", "wasi_usb", "wasi_driver"])
def test_project_specs_load(name):
    doc = load(WITX / f"{name}.witx")
    assert doc.files[0] == str(WITX / f"{name}.witx")
    lower_document(doc)


def test_i2c_model():
    doc = load(WITX / "wasi_i2c.witx")
    assert [m.name for m in doc.modules] == ["wasi_i2c"]
    m = doc.module("wasi_i2c")
    assert m.imports_memory
    assert [f.name for f in m.functions] == ["open", "close", "transaction", "read", "write",
                                              "write_read", "delay_ns"]
    errno = underlying(doc.typenames["i2c_errno"])
    assert isinstance(errno, EnumType) and errno.repr == "u16"
    assert [c.name for c in errno.cases][:4] == ["success", "bus", "arbitration_loss",
                                                  "nack_address"]
    assert errno.cases[3].docs == "The target did not acknowledge its address."
    assert isinstance(underlying(doc.typenames["bus"]), HandleType)
    op = underlying(doc.typenames["operation"])
    assert isinstance(op, RecordType) and [f.name for f in op.fields] == ["kind", "buf",
                                                                         "buf_len"]
    buf = op.fields[1].type
    assert isinstance(buf, PointerType) and not buf.const and buf.elem.name == "u8"
    assert isinstance(op.fields[2].type, TypeName) and op.fields[2].type.name == "size"
    arr = underlying(doc.typenames["operation_array"])
    assert isinstance(arr, ListType) and arr.elem is doc.typenames["operation"]
    # the used file's typenames share the namespace, with their own location and docs
    assert doc.uses == {str(WITX / "wasi_i2c.witx"): [str(WITX / "typenames.witx")],
                        str(WITX / "typenames.witx"): []}
    size = doc.typenames["size"]
    assert size.loc.path.endswith("typenames.witx") and "size or length" in size.docs
    txn = m.function("transaction")
    assert txn.docs.startswith("Run `operations` as one transaction")
    assert txn.loc.line > 1 and txn.params[3].type is doc.typenames["operation_array"]


def test_usb_flags_and_records():
    doc = load(WITX / "wasi_usb.witx")
    flags = underlying(doc.typenames["filter_flags"])
    assert isinstance(flags, FlagsType) and flags.repr == "u8"
    assert [f.name for f in flags.flags] == ["vendor_id", "product_id", "class", "serial"]
    filt = underlying(doc.typenames["filter"])
    assert filt.fields[4].type.const is True


def test_preview1_loads(preview1_dir):
    doc = load(preview1_dir / "wasi_snapshot_preview1.witx")
    m = doc.module("wasi_snapshot_preview1")
    assert len(m.functions) == 46
    assert m.function("proc_exit").noreturn
    sub = underlying(doc.typenames["subscription_u"])
    assert isinstance(sub, VariantType) and sub.kind == "union"
    assert sub.tag is doc.typenames["eventtype"]
    assert [c.name for c in sub.cases] == ["clock", "fd_read", "fd_write"]
    sizes = m.function("args_sizes_get").results[0].type
    ok = underlying(sizes).ok
    assert isinstance(underlying(ok), RecordType) and underlying(ok).is_tuple
    errno = underlying(doc.typenames["errno"])
    assert errno.cases[1].name == "2big"
    assert isinstance(underlying(doc.typenames["rights"]), FlagsType)
    assert underlying(doc.typenames["rights"]).repr == "u64"
    assert isinstance(underlying(m.function("path_open").params[2].type), StringType)


def test_syntax_variants():
    doc = parse("""
    ;; line comment (; not a block ;)
    (; block (; nested ;) comment ;)
    ;;; documented
    ;;; twice
    (typename $c (@witx char8))
    (typename $u (@witx usize))
    (typename $s string)
    (typename $t (tuple u8 $c u64))
    (typename $e (enum $a $b))
    (typename $f (flags $x))
    (typename $v (variant (@witx tag u16) (case $none) (case $some u32)))
    (typename $w (variant (case $one u8) (case $two)))
    (typename $x (expected (error)))
    (typename $b bool)
    (typename $defined_above u8)
    (typename $later $defined_above)
    (typename $ptr (@witx const_pointer (@witx pointer u8)))
    (typename $str_esc (list (@witx char8)))
    (typename $tag (enum (@witx tag u8) $p $q))
    (typename $any_order (variant (@witx tag $tag) (case $q u32) (case $p)))
    """)
    t = doc.typenames
    assert t["c"].docs == "documented\ntwice"
    assert underlying(t["c"]).name == "char8" and underlying(t["u"]).name == "usize"
    assert isinstance(underlying(t["s"]), StringType)
    assert [f.name for f in underlying(t["t"]).fields] == ["0", "1", "2"]
    # without (@witx tag) / (@witx repr) the reference's default: u32
    assert underlying(t["e"]).repr == "u32" and underlying(t["f"]).repr == "u32"
    assert underlying(t["w"]).repr == "u32" and underlying(t["x"]).repr == "u32"
    assert underlying(t["v"]).repr == "u16" and underlying(t["v"]).cases[0].type is None
    x = underlying(t["x"])
    assert x.is_expected and x.ok is None and x.err is None
    b = underlying(t["b"])
    assert b.kind == "bool" and [c.name for c in b.cases] == ["false", "true"] and b.is_enum
    assert underlying(t["later"]) is underlying(t["defined_above"])
    assert isinstance(underlying(t["later"]), Builtin)
    inner = underlying(t["ptr"]).elem
    assert underlying(t["ptr"]).const and not inner.const
    # cases take their tag's order (and values)
    ao = underlying(t["any_order"])
    assert ao.repr == "u8" and [c.name for c in ao.cases] == ["p", "q"]
    assert ao.cases[1].type.name == "u32"


def test_order_free_function_fields_and_any_memory_name():
    doc = parse("""
    (typename $errno (enum $success $bad))
    (module $m (import "mem" (memory))
      (@interface func (export "f") (@witx noreturn) (param $a u8))
      (@interface func (export "g") (result $r (expected (error $errno))) (param $a u8)))
    """)
    m = doc.module("m")
    assert m.imports_memory and m.function("f").noreturn
    assert [p.name for p in m.function("g").params] == ["a"]


def test_load_several_files_into_one_document(tmp_path):
    (tmp_path / "a.witx").write_text("(typename $a u32)\n")
    (tmp_path / "b.witx").write_text('(use "a.witx")\n(typename $b (record (field $x $a)))\n')
    (tmp_path / "c.witx").write_text('(use "a.witx")\n(typename $c (list $a))\n')
    doc = load([tmp_path / "b.witx", tmp_path / "c.witx"])
    assert list(doc.typenames) == ["a", "b", "c"]  # a.witx read once, at its first use
    with pytest.raises(WitxError, match="duplicate typename `\\$a`"):
        (tmp_path / "a2.witx").write_text("(typename $a u8)\n")
        load([tmp_path / "a.witx", tmp_path / "a2.witx"])


def test_string_escapes():
    doc = parse('(module $m (@interface func (export "a\\tb\\u{48}\\41")))')
    assert doc.module("m").functions[0].name == "a\tbHA"


def test_unreadable_and_non_utf8(tmp_path):
    with pytest.raises(WitxError, match="cannot read .*nope.witx: No such file"):
        load(tmp_path / "nope.witx")
    bad = tmp_path / "bad.witx"
    bad.write_bytes(b"(typename $a \xff)")
    with pytest.raises(WitxError, match="not UTF-8"):
        load(bad)
