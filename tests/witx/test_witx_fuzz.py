"""Robustness: any input either loads and lowers or fails with a located `WitxError` —
never another exception."""

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from wasi_hw.witx import WitxError, lower_document, parse

SPEC = (Path(__file__).resolve().parents[2] / "witx" / "wasi_usb.witx").read_text()
TOKENS = ["(", ")", "(", ")", "$a", "$b", "$size", "u8", "u32", "u64", "string", "enum",
          "flags", "record", "field", "variant", "case", "union", "expected", "error", "tuple",
          "list", "handle", "@witx", "tag", "repr", "pointer", "const_pointer", "noreturn",
          "typename", "module", "@interface", "func", "export", '"f"', "param", "result",
          "import", '"memory"', "memory", "use", "12", ";;; doc\n", "\n", "(;", ";)", '"']


def _survives(text: str) -> None:
    try:
        lower_document(parse(text, "fuzz.witx", reader=lambda p: "(typename $size u32)"))
    except WitxError as err:
        assert err.location is None or err.location.line >= 1
        str(err)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup(tokens):
    _survives(" ".join(tokens))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(SPEC)), st.integers(0, 40), st.text(max_size=5))
def test_mutated_real_spec(at, cut, insert):
    _survives(SPEC[:at] + insert + SPEC[at + cut:])
