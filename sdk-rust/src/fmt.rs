//! `FmtBuf`: `core::fmt` formatting into a fixed stack buffer (no allocator).
//!
//! Output that does not fit is cut at a UTF-8 character boundary and marked truncated;
//! formatting never fails.

use core::fmt;

/// A fixed-capacity string buffer implementing [`core::fmt::Write`].
pub struct FmtBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> FmtBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self { buf: [0; N], len: 0, truncated: false }
    }

    /// Formats `args` into a new buffer.
    pub fn format(args: fmt::Arguments<'_>) -> Self {
        let mut b = Self::new();
        let _ = fmt::Write::write_fmt(&mut b, args);
        b
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 characters are ever copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    /// Whether some output was dropped because the buffer was full.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Forgets the contents.
    pub fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }
}

impl<const N: usize> Default for FmtBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FmtBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.truncated {
            return Ok(());
        }
        let room = N - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            self.truncated = true;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for FmtBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::FmtBuf;
    use core::fmt::Write;

    #[test]
    fn formats_and_truncates_at_char_boundary() {
        let b = FmtBuf::<16>::format(format_args!("t={}:{:02x}", -7, 10u8));
        assert_eq!(b.as_str(), "t=-7:0a");
        assert!(!b.truncated());
        let mut b = FmtBuf::<5>::new();
        write!(b, "ab°cd").unwrap(); // ° is two bytes: "ab°c" = 5 bytes fits
        assert_eq!(b.as_str(), "ab°c");
        assert!(b.truncated());
        let mut b = FmtBuf::<3>::new();
        write!(b, "ab°").unwrap(); // would split °
        assert_eq!(b.as_str(), "ab");
        assert!(b.truncated());
    }
}
