"""Native `cargo test` of the USB side of the guest: the SDK's `usb` module (descriptor
parsing, errno mapping, direction checks) and the pure logic of the usb-echo, hid-keyboard
and msc drivers (echo cycle against a device model, boot-report diffing and CBOR batches,
CBW/CSW and SCSI against a scripted Bulk-Only device).

Each case runs one `cargo test --lib` through the `cargo_test` fixture (tests/drivers/conftest.py:
the host target, the toolchain `wasi-hw build` selects) and checks that named tests ran and
passed — a crate whose tests vanish fails too.
"""

from __future__ import annotations

import pytest

# package, test-name filter, tests that must be among those that passed
CASES = {
    "sdk-usb": ("wasi-hw-sdk", "usb::", [
        "usb::tests::every_errno_round_trips",
        "usb::tests::direction_checks_precede_any_call",
        "usb::descriptors::tests::interfaces_and_endpoints",
        "usb::descriptors::tests::config_rejects_truncated_and_malformed",
    ]),
    "usb-echo": ("wasi-hw-driver-usb-echo", None, [
        "echo::tests::good_device_passes_two_cycles",
        "echo::tests::corrupted_byte_is_a_mismatch_at_its_offset",
        "echo::tests::endpoints_found_in_the_echo_interface",
    ]),
    "hid-keyboard": ("wasi-hw-driver-hid-keyboard", None, [
        "boot::tests::typing_a_sequence_reconstructs_the_text",
        "boot::tests::parse_checks_length_and_rollover",
        "batch::tests::encodes_events_and_text",
    ]),
    "msc": ("wasi-hw-driver-msc", None, [
        "bot::tests::cbw_layout",
        "bot::tests::wrong_tag_triggers_reset_recovery",
        "bot::tests::stall_in_data_phase_is_cleared_and_csw_read",
        "scsi::tests::failed_command_fetches_sense",
    ]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cargo_tests_pass(case, cargo_test):
    package, name_filter, required = CASES[case]
    passed = cargo_test(package, name_filter)   # fails with cargo's output if cargo fails
    missing = [t for t in required if t not in passed]
    assert not missing, f"tests did not run or pass: {missing} (passed: {sorted(passed)})"
