//! `comfort`: a module without hardware. Each poll calls the services `bme280.reading` and
//! `sht3x.reading` (by name: the kernel finds them in this kernel or over NATS), averages the
//! temperatures and humidities it got, computes the dew point and publishes
//! `{"dewpoint_c", "temperature_c", "humidity_pct"}` on its topic `dewpoint` (subscribers name
//! it `comfort.dewpoint`) and reports the same map.
//!
//! - [`conversion`]: the dew point (Magnus formula) and reading a sensor's CBOR map (pure);
//! - [`driver`] (wasm): the module.
#![cfg_attr(target_arch = "wasm32", no_std)]

pub mod conversion;
pub mod driver;
