//! The default `#[panic_handler]` for wasm32 drivers (feature `panic-handler`): logs
//! `panic: <message>` at error level through `wasi_driver.log`, then traps (`unreachable`),
//! which the kernel sees as a failed call. Not built on other targets, where std provides one.

#[cfg(all(target_arch = "wasm32", feature = "panic-handler", not(test)))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::log::log_fmt(crate::log::Level::Error, format_args!("panic: {info}"));
    core::arch::wasm32::unreachable()
}
