"""Invalid WITX inputs: each is rejected with a precise message located at file:line:col,
and the diagnostic shows the offending line with a caret under the column."""

import pytest

from wasi_hw.witx import WitxError, lower_document, parse

USED = {"dir/ok.witx": "(typename $size u32)\n", "dir/bad.witx": "(typename $x\n",
        "dir/loop_a.witx": '(use "loop_b.witx")\n', "dir/loop_b.witx": '(use "loop_a.witx")\n',
        "dir/dup.witx": "(typename $size u16)\n"}


def _reader(path):
    key = path.replace("\\", "/")
    if key in USED:
        return USED[key]
    raise FileNotFoundError(2, "No such file or directory")


M = '(module $m\n  (@interface func (export "f")\n'  # functions start on line 3

CASES = [
    # (source, message fragment, line, col)
    ("(typename $a u32", "unclosed `(`", 1, 1),
    ("(typename $a u32))", "unexpected `)`", 1, 18),
    ('(use "a.witx)', "unterminated string literal", 1, 6),
    ('(use "a\\q.witx")', "invalid escape sequence", 1, 8),
    ("(typename $a u32) (; never closed", "unterminated block comment", 1, 19),
    ("(typename $a u32)\n  {", "unexpected character '{'", 2, 3),
    ("(typename $ u32)", "empty identifier", 1, 11),
    ("(typename $a 12abc)", "invalid number `12abc`", 1, 14),
    ("(typename $a u32)\n$b", "expected a top-level form", 2, 1),
    ("(typename $a " + "(list " * 70 + "u8" + ")" * 71, "nested deeper than 64 levels", 1, 392),
    ("(interface $x)", "unknown top-level form `(interface ...)`", 1, 1),
    ("(typename a u32)", "`typename` needs a name", 1, 1),
    ("(typename $a)", "`typename $a` is missing its type", 1, 1),
    ("(typename $a u32 u8)", "found extra `u8`", 1, 18),
    ("(typename $a u32)\n(typename $a u8)", "duplicate typename `$a` (first defined at <t>:1:11)",
     2, 11),
    ("(module $a)\n(typename $a u8)", "duplicate name (already a module) `$a`", 2, 11),
    ("(typename $a u8)\n(module $m (@interface func (export \"f\") (param $p $m)))",
     "`$m` is a module, not a type", 2, 52),
    ("(typename $a $b)", "unknown type `$b`", 1, 14),
    ("(typename $a $b)\n(typename $b u8)", "a typename must be defined before it is used", 1, 14),
    ("(typename $a (record (field $x $a)))", "type `$a` refers to itself", 1, 32),
    ("(typename $a (@witx pointer (record (field $b u8))))", "an anonymous `(record ...)`", 1, 29),
    ("(typename $a (record (field $b (enum $c))))", "anonymous structured types", 1, 32),
    ("(typename $a (list (flags $x)))", "an anonymous `(flags ...)`", 1, 20),
    ("(typename $a (tuple (handle)))", "an anonymous `(handle ...)`", 1, 21),
    ("(typename $a (expected (union u8) (error)))", "an anonymous `(union ...)`", 1, 24),
    ("(typename $a (record))", "a record needs at least one field", 1, 14),
    ("(typename $a char8)", "it is written `(@witx char8)`", 1, 14),
    ("(typename $a (u8))", "expected a type, found `(u8 ...)`", 1, 14),
    ("(typename $a i32)", "expected a type, found `i32`", 1, 14),
    ("(typename $a (struct))", "expected a type, found `(struct ...)`", 1, 14),
    ("(typename $a (enum (@witx tag u8)))", "an enum needs at least one case", 1, 14),
    ("(typename $a (enum (@witx tag f32) $x))", "must be one of u8, u16, u32, u64; found `f32`",
     1, 31),
    ("(typename $a (enum (@witx tag u8) $x\n    $y $x))", "duplicate enum case `$x`", 2, 8),
    ("(typename $a (enum (@witx repr u8) $x))", "expected `(@witx tag ...)`", 1, 20),
    ("(typename $a (enum (@witx tag u8) \"x\"))", "expected a enum case name", 1, 35),
    ("(typename $a (flags (@witx repr u8) $a $b $c $d $e $f $g $h $i))",
     "9 flags do not fit the representation u8 (8 bits)", 1, 21),
    ("(typename $a (flags (@witx repr u8) $a $a))", "duplicate flag `$a`", 1, 40),
    ("(typename $a (record (field $x u8)\n  (field $x u16)))", "duplicate field `$x`", 2, 10),
    ("(typename $a (record (param $x u8)))", "expected `(field $name TYPE)` in a record", 1, 22),
    ("(typename $a (record (field $x)))", "a field is `(field $name TYPE)`", 1, 22),
    ("(typename $a (list u8 u16))", "`list` expects 1 argument", 1, 23),
    ("(typename $a (handle u32))", "`(handle)` takes no arguments", 1, 22),
    ("(typename $a (@witx pointer))", "takes exactly one type", 1, 14),
    ("(typename $a (@witx bogus u8))", "unknown `@witx` type annotation `bogus`", 1, 21),
    ("(typename $t (enum (@witx tag u8) $a $b))\n(typename $u (union (@witx tag $t) u8))",
     "union has 1 cases but its tag `$t` has 2", 2, 14),
    ("(typename $t string)\n(typename $u (union (@witx tag $t) u8))",
     "a variant tag must be an enum or u8/u16/u32/u64; `$t` is a string", 2, 32),
    ("(typename $u (union (@witx tag s8) u8))", "`s8` is a signed or float type", 1, 32),
    ("(typename $t (enum (@witx tag u8) $a $b))\n"
     "(typename $v (variant (@witx tag $t) (case $a) (case $c u8)))",
     "variant case `$c` is not a case of its tag `$t` ($a, $b)", 2, 54),
    ("(typename $v (variant (case $a) (case $a)))", "duplicate variant case `$a`", 1, 39),
    ("(typename $e (expected u8 (oops u8)))", "expected `(error TYPE?)`", 1, 27),
    ("(typename $e (expected u8))", "`expected` needs its error part", 1, 14),
    ("(typename $e (expected (error u8 u8)))", "`(error TYPE?)` takes at most one type", 1, 34),
    ("(typename $e (expected u8 (error u8) u8))", "unexpected `u8` after `(error ...)`", 1, 38),
    ('(use "missing.witx")', "cannot read used file 'missing.witx'", 1, 6),
    ('(use "ok.witx" "x")', "`use` takes one file name", 1, 1),
    ('(use "bad.witx")', "unclosed `(`", 1, 1),  # located in the used file
    ('(use "dup.witx")\n(typename $size u32)', "duplicate typename `$size`", 2, 11),
    ("(module m)", "a module needs a name", 1, 1),
    ("(module $m)\n(module $m)", "duplicate module `$m`", 2, 9),
    ('(module $m (import "memory" (table)))', "a module imports only its memory", 1, 12),
    ('(module $m (import "memory" (memory)) (import "memory" (memory)))',
     'duplicate import or function name "memory" in module `$m`', 1, 47),
    ("(module $m (typename $a u8))", "expected `(import \"memory\" (memory))` or", 1, 12),
    ("(module $m (@interface func))", "needs its export name", 1, 12),
    ("(module $m (@interface func (export \"\")))", "export name must not be empty", 1, 37),
    (M + '  )\n  (@interface func (export "f")))', "duplicate function `f` in module `$m`", 4, 3),
    (M + "    (param $x u8) (param $x u8)))", "duplicate parameter or result `$x`", 3, 26),
    (M + "    (result $e (expected (error u8))) (@witx noreturn)))",
     "`f` is `noreturn` but declares a result", 3, 39),
    (M + "    (docs)))", "expected `(param ...)`, `(result ...)` or `(@witx noreturn)`", 3, 5),
    (M + "    (param)))", "a param is `(param $name TYPE)`", 3, 5),
]

# lowering errors: valid syntax, not expressible in the preview1 ABI
LOWERING = [
    (M + "    (result $r string)))", "result `$r` of `f` is a string, which cannot be returned",
     3, 5),
    (M + "    (result $r $e)))", "result `$r` of `f` is an enum, which cannot be returned", 3, 5),
    (M + "    (result $r (variant (case $a u8)))))", "a variant other than `expected`", 3, 5),
    (M + "    (result $a (expected (error $e))) (result $b (expected (error $e)))))",
     "`f` has 2 results", 3, 39),
    (M + "    (result $r (expected u8 (error $e)))))", "only named types are allowed in results",
     3, 5),
    (M + "    (result $r (expected (tuple $e u8) (error $e)))))",
     "only named types are allowed in results", 3, 5),
    (M + "    (result $r (expected (error u32)))))", "only named types are allowed", 3, 5),
    ("(typename $sz u32)\n" + M + "    (result $r (expected (error $sz)))))",
     "needs `(error E)` with E an enum", 4, 5),
]


def _check(src, fragment, line, col, lower=False):
    src = "(typename $e (enum (@witx tag u16) $ok $bad))\n" + src if lower else src
    with pytest.raises(WitxError) as info:
        doc = parse(src, "dir/t.witx" if "use" in src else "<t>", reader=_reader)
        lower_document(doc)
    err = info.value
    line += 1 if lower else 0
    assert fragment.replace("<t>", err.location.path) in err.message
    assert (err.location.line, err.location.col) == (line, col), str(err)
    text = str(err).splitlines()
    assert text[0] == f"{err.location.path}:{line}:{col}: {err.message}"
    # the source line and a caret under the column
    source_line = err.location.text.expandtabs(1)
    assert text[1] == "    " + source_line.rstrip()
    assert text[2] == "    " + " " * (col - 1) + "^"


@pytest.mark.parametrize("src,fragment,line,col", CASES)
def test_invalid_input(src, fragment, line, col):
    _check(src, fragment, line, col)


@pytest.mark.parametrize("src,fragment,line,col", LOWERING)
def test_invalid_lowering(src, fragment, line, col):
    _check(src, fragment, line, col, lower=True)


def test_suite_is_large():
    assert len(CASES) + len(LOWERING) >= 30


def test_use_cycle_reads_each_file_once():
    reads = []

    def reader(path):
        reads.append(path.replace("\\", "/"))
        return _reader(path)

    doc = parse('(use "loop_a.witx")', "dir/t.witx", reader=reader)
    assert reads == ["dir/loop_a.witx", "dir/loop_b.witx"]
    assert doc.files == ["dir/t.witx", "dir/loop_a.witx", "dir/loop_b.witx"]


def test_used_file_error_is_located_in_that_file():
    with pytest.raises(WitxError) as info:
        parse('(use "bad.witx")', "dir/t.witx", reader=_reader)
    assert info.value.location.path.endswith("bad.witx")
