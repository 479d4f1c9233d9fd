"""Native `cargo test` of the guest SDK and of every driver crate under drivers/.

The crates are discovered (`wasi_hw.apps._build.crates`: sdk-rust and every drivers/<dir> with a
Cargo.toml), not listed: a new driver is tested as soon as it exists. Each crate's unit tests
must run and pass, and a crate without any must say why in NO_UNIT_TESTS. REQUIRED names
tests that must be among those that passed, so a crate whose tests vanish fails too:
SDK: errno → embedded-hal `ErrorKind` mapping, operation lowering and address checks, CBOR
report encoding, config number parsing, log truncation, the `init`/`poll` slot, the `usb`
module. Drivers: datasheet worked examples for every conversion and scripted bus
transactions (embedded-hal-mock, every expected transfer must happen) for every wire
sequence; the USB drivers' pure logic against device models.
Every driver's manifest.toml is validated too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wasi_hw.apps._build import crates
from wasi_hw.kernel import load_manifest

ROOT = Path(__file__).resolve().parents[2]
CRATES = {c.name: c for c in crates(ROOT)}

# crates whose only code is the wasm glue (they are exercised under the kernel instead)
NO_UNIT_TESTS = {"hello": "one transaction and a report; tests/integration runs it"}

# crate directory name → tests that must be among those that passed
REQUIRED = {
    "sdk-rust": [
        "i2c::tests::every_errno_maps_to_its_kind",
        "i2c::tests::addresses_are_range_checked",
        "i2c::tests::operations_lower_in_order_with_their_buffers",
        "i2c::tests::too_many_operations_is_no_mem",
        "i2c::tests::without_a_host_calls_fail_cleanly",
        "report::tests::encodes_a_definite_map",
        "report::tests::overflow_is_too_large_not_truncated",
        "config::tests::numbers_in_three_radixes",
        "config::tests::malformed_numbers_are_errors",
        "config::tests::errors_name_the_key",
        "log::tests::long_messages_are_cut_and_marked",
        "driver::tests::errno_mapping_covers_the_spec",
        "driver::tests::slot_runs_init_then_poll",
        "imc::tests::latest_reading_serves_the_newest_report",
        "fmt::tests::formats_and_truncates_at_char_boundary",
        "usb::tests::every_errno_round_trips",
        "usb::tests::direction_checks_precede_any_call",
        "usb::descriptors::tests::interfaces_and_endpoints",
        "usb::descriptors::tests::config_rejects_truncated_and_malformed",
    ],
    "bme280": [
        "conversion::tests::datasheet_worked_example_temperature",
        "conversion::tests::datasheet_worked_example_pressure",
        "conversion::tests::humidity_integer_matches_the_double_formula_and_clamps",
        "conversion::tests::calibration_registers_parse",
        "configuration::tests::measurement_time_matches_datasheet_table",
        "reading::tests::init_then_forced_measurement_on_the_wire",
        "reading::tests::wrong_chip_id_is_reported",
        "reading::tests::stuck_measuring_is_busy_not_a_hang",
    ],
    "sht3x": [
        "conversion::tests::crc_datasheet_example",
        "conversion::tests::conversion_formulas",
        "conversion::tests::response_crcs_are_checked",
        "reading::tests::single_shot_on_the_wire",
        "reading::tests::nack_while_measuring_is_retried",
        "reading::tests::crc_failure_is_an_error",
    ],
    "tmp102": [
        "configuration::datasheet::twelve_bit_table_8_2",
        "configuration::datasheet::thirteen_bit_extended_table_8_3",
        "configuration::datasheet::extended_mode_writes_the_em_bit",
        "configuration::tests::address_pins",
    ],
    "hd44780": [
        "conversion::tests::bytes_become_two_latched_nibbles",
        "conversion::tests::text_lines_are_padded_cut_and_mapped",
        "conversion::tests::cbor_map_renders_key_value_lines",
        "conversion::tests::bad_messages_are_precise_errors",
        "display::tests::init_sequence_on_the_wire",
        "display::tests::show_addresses_each_row_then_writes_its_characters",
    ],
    "usb-echo": [
        "echo::tests::good_device_passes_two_cycles",
        "echo::tests::corrupted_byte_is_a_mismatch_at_its_offset",
        "echo::tests::endpoints_found_in_the_echo_interface",
    ],
    "hid-keyboard": [
        "boot::tests::typing_a_sequence_reconstructs_the_text",
        "boot::tests::parse_checks_length_and_rollover",
        "batch::tests::encodes_events_and_text",
    ],
    "msc": [
        "bot::tests::cbw_layout",
        "bot::tests::wrong_tag_triggers_reset_recovery",
        "bot::tests::stall_in_data_phase_is_cleared_and_csw_read",
        "scsi::tests::failed_command_fetches_sense",
    ],
}


@pytest.mark.parametrize("name", sorted(CRATES))
def test_unit_tests_pass(name, cargo_test):
    crate = CRATES[name]
    if name in NO_UNIT_TESTS:
        pytest.skip(f"{name}: no unit tests ({NO_UNIT_TESTS[name]})")
    passed = cargo_test(crate.package)          # fails with cargo's output if cargo fails
    assert passed, f"{name}: no unit test ran (add some, or list it in NO_UNIT_TESTS)"
    missing = [t for t in REQUIRED.get(name, []) if t not in passed]
    assert not missing, f"tests did not run or pass: {missing} (passed: {sorted(passed)})"


def test_discovery_sees_every_driver_and_the_tables_are_current():
    dirs = {p.parent.name for p in (ROOT / "drivers").glob("*/Cargo.toml")}
    assert dirs | {"sdk-rust"} == set(CRATES)
    assert set(REQUIRED) <= set(CRATES) and set(NO_UNIT_TESTS) <= set(CRATES)


@pytest.mark.parametrize("name", sorted(n for n in CRATES
                                        if (ROOT / "drivers" / n / "manifest.toml").is_file()))
def test_manifest_is_valid(name):
    m = load_manifest(ROOT / "drivers" / name / "manifest.toml")
    assert m.wasm.name == f"{name}.wasm"
