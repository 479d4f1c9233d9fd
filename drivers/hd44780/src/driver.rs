//! The wasi-hw driver: config `bus` (default "i2c-1"), `address` (default 0x27), `text`
//! (shown at `init`; `\n` separates the two lines), `backlight` (bool, default true).
//! Each `poll` takes the newest inbox message — a CBOR map, e.g. another driver's reading —
//! and shows it as `key: value` lines, then reports what is shown as `{"line1", "line2"}`
//! (trailing blanks dropped). `init` reports the same when it shows `text`.
//! An empty inbox leaves the display as it is and reports nothing. With config `topic`
//! (e.g. "comfort.dewpoint", listed in the manifest's `[imc] subscribe`) it also subscribes to
//! that topic and shows its newest publication first.

use wasi_hw_sdk::config;
use wasi_hw_sdk::delay::Delay;
use wasi_hw_sdk::i2c::{self, I2cBus};
use wasi_hw_sdk::imc::{self, Subscription};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::{inbox, Driver, FmtBuf};

use crate::conversion::{LineText, RenderError, Screen};
use crate::display::Hd44780;
use crate::interface::DEFAULT_ADDRESS;

/// Largest inbox message shown.
pub const INBOX_CAPACITY: usize = 256;

/// Why `init`/`poll` failed.
#[derive(Debug)]
pub enum AppError {
    Sdk(wasi_hw_sdk::Error),
    Render(RenderError),
}

impl<E: Into<wasi_hw_sdk::Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError::Sdk(e.into())
    }
}

/// The driver instance.
pub struct App {
    lcd: Hd44780<I2cBus, Delay>,
    topic: Option<Subscription>,
}

impl App {
    fn show(&mut self, screen: &Screen) -> Result<(), AppError> {
        self.lcd.show(screen)?;
        let line1 = FmtBuf::<64>::format(format_args!("{}", LineText(&screen.lines[0])));
        let line2 = FmtBuf::<64>::format(format_args!("{}", LineText(&screen.lines[1])));
        Report::new().str("line1", line1.as_str()).str("line2", line2.as_str()).send()?;
        Ok(())
    }
}

impl Driver for App {
    type Error = AppError;

    fn init() -> Result<Self, AppError> {
        let address = i2c::configured_address(DEFAULT_ADDRESS)?;
        let backlight = config::bool_or("backlight", true)?;
        let mut lcd = Hd44780::new(i2c::open_configured("i2c-1")?, Delay, address, backlight);
        lcd.init()?;
        let mut name = [0u8; 64];
        let topic = match config::get("topic", &mut name)? {
            Some(t) => Some(imc::subscribe(t)?),
            None => None,
        };
        let mut app = App { lcd, topic };
        let mut buf = [0u8; 128];
        if let Some(text) = config::get("text", &mut buf)? {
            app.show(&Screen::from_text(text))?;
        }
        Ok(app)
    }

    fn poll(&mut self) -> Result<(), AppError> {
        let mut buf = [0u8; INBOX_CAPACITY];
        if let Some(sub) = self.topic {
            let mut newest = [0u8; INBOX_CAPACITY];
            let mut len = 0;
            while let Some(msg) = sub.receive(&mut buf)? {
                newest[..msg.len()].copy_from_slice(msg);
                len = msg.len();
            }
            if len > 0 {
                let screen = Screen::from_cbor_map(&newest[..len]).map_err(AppError::Render)?;
                return self.show(&screen);
            }
        }
        match inbox::take(&mut buf)? {
            None => Ok(()),
            Some(msg) => {
                let screen = Screen::from_cbor_map(msg).map_err(AppError::Render)?;
                self.show(&screen)
            }
        }
    }
}

wasi_hw_sdk::export_driver!(App);
