//! HID boot-protocol keyboard reports (HID 1.11 appendix B.1) and their key events.
//!
//! A boot report is 8 bytes: a modifier bitmap (bit 0 left Ctrl … bit 7 right GUI, usages
//! 0xE0–0xE7), a reserved byte, and up to six pressed key usages (0 = none). All six set
//! to 0x01 (ErrorRollOver) means "too many keys": the report carries no key state and is
//! ignored. [`diff`] turns two consecutive reports into press/release events in a stable
//! order: modifier releases, key releases, modifier presses, key presses.
//! [`to_ascii`] maps a key usage to the character it types on a US layout.

/// One boot keyboard report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootReport {
    pub modifiers: u8,
    pub keys: [u8; 6],
}

/// Why bytes are not a usable boot report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportError {
    /// Fewer than 8 bytes.
    Short(usize),
    /// ErrorRollOver (phantom state): too many keys pressed.
    RollOver,
}

pub const ERROR_ROLL_OVER: u8 = 0x01;
pub const LEFT_SHIFT: u8 = 0x02;
pub const RIGHT_SHIFT: u8 = 0x20;
/// Usage of the modifier in bit 0 (left Control); bit `i` is `0xE0 + i`.
pub const FIRST_MODIFIER_USAGE: u8 = 0xE0;

impl BootReport {
    pub const LEN: usize = 8;

    pub fn parse(b: &[u8]) -> Result<Self, ReportError> {
        if b.len() < Self::LEN {
            return Err(ReportError::Short(b.len()));
        }
        let mut keys = [0u8; 6];
        keys.copy_from_slice(&b[2..8]);
        if keys.iter().all(|&k| k == ERROR_ROLL_OVER) {
            return Err(ReportError::RollOver);
        }
        Ok(Self { modifiers: b[0], keys })
    }

    pub fn shift(&self) -> bool {
        self.modifiers & (LEFT_SHIFT | RIGHT_SHIFT) != 0
    }

    fn pressed(&self, usage: u8) -> bool {
        usage != 0 && self.keys.contains(&usage)
    }
}

/// Press or release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Press,
    Release,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Press => "press",
            Action::Release => "release",
        }
    }
}

/// One key event: the key's usage (0xE0–0xE7 for modifiers), the modifier state after the
/// report, and the character a press types (`None` for releases and non-printing keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyEvent {
    pub action: Action,
    pub usage: u8,
    pub modifiers: u8,
    pub ascii: Option<char>,
}

/// Calls `emit` for each change from `prev` to `cur` (see the module docs for the order).
pub fn diff(prev: &BootReport, cur: &BootReport, mut emit: impl FnMut(KeyEvent)) {
    let event = |action, usage, ascii| KeyEvent { action, usage, modifiers: cur.modifiers, ascii };
    let released_mods = prev.modifiers & !cur.modifiers;
    let pressed_mods = cur.modifiers & !prev.modifiers;
    for bit in 0..8 {
        if released_mods & (1 << bit) != 0 {
            emit(event(Action::Release, FIRST_MODIFIER_USAGE + bit, None));
        }
    }
    for &k in prev.keys.iter().filter(|&&k| k > 3) {
        if !cur.pressed(k) {
            emit(event(Action::Release, k, None));
        }
    }
    for bit in 0..8 {
        if pressed_mods & (1 << bit) != 0 {
            emit(event(Action::Press, FIRST_MODIFIER_USAGE + bit, None));
        }
    }
    for (i, &k) in cur.keys.iter().enumerate() {
        // usages 1..=3 are error codes, not keys; a usage listed twice counts once
        if k > 3 && !prev.pressed(k) && !cur.keys[..i].contains(&k) {
            emit(event(Action::Press, k, to_ascii(k, cur.shift())));
        }
    }
}

/// The character key `usage` types on a US layout (`shift`: with Shift held), if any.
pub fn to_ascii(usage: u8, shift: bool) -> Option<char> {
    const DIGITS: &[u8; 10] = b"1234567890";
    const DIGITS_SHIFTED: &[u8; 10] = b"!@#$%^&*()";
    // usages 0x2D..=0x38 (0x32, non-US #, has no US key)
    const PUNCT: &[u8; 12] = b"-=[]\\\0;'`,./";
    const PUNCT_SHIFTED: &[u8; 12] = b"_+{}|\0:\"~<>?";
    let c = match usage {
        0x04..=0x1D => {
            let base = if shift { b'A' } else { b'a' };
            base + (usage - 0x04)
        }
        0x1E..=0x27 => (if shift { DIGITS_SHIFTED } else { DIGITS })[(usage - 0x1E) as usize],
        0x28 => b'\n',
        0x2A => 0x08, // Backspace
        0x2B => b'\t',
        0x2C => b' ',
        0x2D..=0x38 => (if shift { PUNCT_SHIFTED } else { PUNCT })[(usage - 0x2D) as usize],
        _ => 0,
    };
    (c != 0).then_some(c as char)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn r(modifiers: u8, keys: &[u8]) -> BootReport {
        let mut k = [0u8; 6];
        k[..keys.len()].copy_from_slice(keys);
        BootReport { modifiers, keys: k }
    }

    fn events(prev: BootReport, cur: BootReport) -> Vec<(Action, u8, Option<char>)> {
        let mut v = Vec::new();
        diff(&prev, &cur, |e| v.push((e.action, e.usage, e.ascii)));
        v
    }

    #[test]
    fn parse_checks_length_and_rollover() {
        let b = BootReport::parse(&[0x02, 0, 0x04, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(b, r(0x02, &[0x04]));
        assert!(b.shift());
        assert_eq!(BootReport::parse(&[0; 7]), Err(ReportError::Short(7)));
        assert_eq!(BootReport::parse(&[0, 0, 1, 1, 1, 1, 1, 1]), Err(ReportError::RollOver));
    }

    #[test]
    fn press_and_release_of_one_key() {
        assert_eq!(events(r(0, &[]), r(0, &[0x0B])), [(Action::Press, 0x0B, Some('h'))]);
        assert_eq!(events(r(0, &[0x0B]), r(0, &[])), [(Action::Release, 0x0B, None)]);
        assert!(events(r(0, &[0x0B]), r(0, &[0x0B])).is_empty());
    }

    #[test]
    fn shifted_letter_emits_modifier_then_key() {
        assert_eq!(
            events(r(0, &[]), r(LEFT_SHIFT, &[0x0B])),
            [(Action::Press, 0xE1, None), (Action::Press, 0x0B, Some('H'))]
        );
        assert_eq!(
            events(r(LEFT_SHIFT, &[0x0B]), r(0, &[])),
            [(Action::Release, 0xE1, None), (Action::Release, 0x0B, None)]
        );
    }

    #[test]
    fn rollover_of_several_keys_keeps_order() {
        // a held, b pressed; then a released while c pressed
        assert_eq!(events(r(0, &[4]), r(0, &[4, 5])), [(Action::Press, 5, Some('b'))]);
        assert_eq!(
            events(r(0, &[4, 5]), r(0, &[5, 6])),
            [(Action::Release, 4, None), (Action::Press, 6, Some('c'))]
        );
        // duplicate usage in one report counts once
        assert_eq!(events(r(0, &[]), r(0, &[7, 7])), [(Action::Press, 7, Some('d'))]);
    }

    #[test]
    fn ascii_covers_letters_digits_space_enter_and_punctuation() {
        let typed: String = [0x1E, 0x27, 0x2C, 0x28, 0x2D, 0x38, 0x31]
            .iter()
            .map(|&u| to_ascii(u, false).unwrap())
            .collect();
        assert_eq!(typed, "10 \n-/\\");
        let shifted: String = [0x04, 0x1D, 0x1E, 0x26, 0x2E, 0x34, 0x37]
            .iter()
            .map(|&u| to_ascii(u, true).unwrap())
            .collect();
        assert_eq!(shifted, "AZ!(+\">");
        assert_eq!(to_ascii(0x32, false), None); // non-US #
        assert_eq!(to_ascii(0x29, false), None); // Escape
        assert_eq!(to_ascii(0xE1, false), None);
    }

    #[test]
    fn typing_a_sequence_reconstructs_the_text() {
        // "Hi 5\n" as the device model scripts it: press + release per character
        let script = [
            r(LEFT_SHIFT, &[0x0B]), r(0, &[]),
            r(0, &[0x0C]), r(0, &[]),
            r(0, &[0x2C]), r(0, &[]),
            r(0, &[0x22]), r(0, &[]),
            r(0, &[0x28]), r(0, &[]),
        ];
        let mut prev = BootReport::default();
        let mut text = String::new();
        let mut releases = 0;
        for cur in script {
            diff(&prev, &cur, |e| match (e.action, e.ascii) {
                (Action::Press, Some(c)) => text.push(c),
                (Action::Release, _) => releases += 1,
                _ => {}
            });
            prev = cur;
        }
        assert_eq!(text, "Hi 5\n");
        assert_eq!(releases, 6); // five keys and the shift
    }
}
