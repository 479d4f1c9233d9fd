"""Native `cargo test` of the guest SDK and the I2C drivers' pure code.

SDK: errno → embedded-hal `ErrorKind` mapping, operation lowering and address checks, CBOR
report encoding, config number parsing, log truncation, the `init`/`poll` slot. Drivers:
datasheet worked examples for every conversion and scripted bus transactions
(embedded-hal-mock, every expected transfer must happen) for every wire sequence.
"""

from __future__ import annotations

import pytest

# package, test-name filter, tests that must be among those that passed
CASES = {
    "sdk": ("wasi-hw-sdk", None, [
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
        "fmt::tests::formats_and_truncates_at_char_boundary",
    ]),
    "bme280": ("wasi-hw-driver-bme280", None, [
        "conversion::tests::datasheet_worked_example_temperature",
        "conversion::tests::datasheet_worked_example_pressure",
        "conversion::tests::humidity_integer_matches_the_double_formula_and_clamps",
        "conversion::tests::calibration_registers_parse",
        "configuration::tests::measurement_time_matches_datasheet_table",
        "reading::tests::init_then_forced_measurement_on_the_wire",
        "reading::tests::wrong_chip_id_is_reported",
        "reading::tests::stuck_measuring_is_busy_not_a_hang",
    ]),
    "sht3x": ("wasi-hw-driver-sht3x", None, [
        "conversion::tests::crc_datasheet_example",
        "conversion::tests::conversion_formulas",
        "conversion::tests::response_crcs_are_checked",
        "reading::tests::single_shot_on_the_wire",
        "reading::tests::nack_while_measuring_is_retried",
        "reading::tests::crc_failure_is_an_error",
    ]),
    "tmp102": ("wasi-hw-driver-tmp102", None, [
        "configuration::datasheet::twelve_bit_table_8_2",
        "configuration::datasheet::thirteen_bit_extended_table_8_3",
        "configuration::datasheet::extended_mode_writes_the_em_bit",
        "configuration::tests::address_pins",
    ]),
    "hd44780": ("wasi-hw-driver-hd44780", None, [
        "conversion::tests::bytes_become_two_latched_nibbles",
        "conversion::tests::text_lines_are_padded_cut_and_mapped",
        "conversion::tests::cbor_map_renders_key_value_lines",
        "conversion::tests::bad_messages_are_precise_errors",
        "display::tests::init_sequence_on_the_wire",
        "display::tests::show_addresses_each_row_then_writes_its_characters",
    ]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cargo_tests_pass(case, cargo_test):
    package, name_filter, required = CASES[case]
    passed = cargo_test(package, name_filter)
    missing = [t for t in required if t not in passed]
    assert not missing, f"tests did not run or pass: {missing}"
