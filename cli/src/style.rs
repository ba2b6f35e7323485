//! Colour for what people read, in one place: methods are named for what the
//! text means, and everything is plain under `NO_COLOR` or when the stream is
//! not a terminal.

use std::fmt::Display;
use std::io::IsTerminal;
use std::time::Duration;

use colored::{ColoredString, Colorize};

/// Whether a stream may carry colour: a terminal, and `NO_COLOR` unset or empty.
pub fn color_allowed(is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    is_terminal && !no_color
}

/// The styles of handover's human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn new(color: bool) -> Style {
        // `colored` also checks its own global switch; keep it in step.
        if color {
            colored::control::set_override(true);
        }
        Style { color }
    }

    /// For a stream that is (or is not) a terminal.
    pub fn for_stream(is_terminal: bool) -> Style {
        Style::new(color_allowed(is_terminal))
    }

    /// For stdout.
    pub fn stdout() -> Style {
        Style::for_stream(std::io::stdout().is_terminal())
    }

    /// For stderr.
    pub fn stderr() -> Style {
        Style::for_stream(std::io::stderr().is_terminal())
    }

    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, text: impl Display, f: impl Fn(&str) -> ColoredString) -> String {
        let text = text.to_string();
        if self.color {
            f(&text).to_string()
        } else {
            text
        }
    }

    /// A section heading or a step name.
    pub fn heading(&self, t: impl Display) -> String {
        self.paint(t, |s| s.bold())
    }
    /// Something that went right.
    pub fn good(&self, t: impl Display) -> String {
        self.paint(t, |s| s.green())
    }
    /// A mark that something went right (✓).
    pub fn ok(&self, t: impl Display) -> String {
        self.paint(t, |s| s.green().bold())
    }
    /// Something that went wrong.
    pub fn bad(&self, t: impl Display) -> String {
        self.paint(t, |s| s.red().bold())
    }
    /// A number that should have been zero.
    pub fn nonzero(&self, t: impl Display) -> String {
        self.paint(t, |s| s.red())
    }
    pub fn warn(&self, t: impl Display) -> String {
        self.paint(t, |s| s.yellow())
    }
    /// An event worth noticing (the instance changed).
    pub fn event(&self, t: impl Display) -> String {
        self.paint(t, |s| s.cyan().bold())
    }
    /// Detail a reader may skip.
    pub fn dim(&self, t: impl Display) -> String {
        self.paint(t, |s| s.dimmed())
    }
    /// The PASS banner: white on green.
    pub fn banner_pass(&self, t: impl Display) -> String {
        self.banner(t, "42")
    }
    /// The FAIL banner: white on red.
    pub fn banner_fail(&self, t: impl Display) -> String {
        self.banner(t, "41")
    }
    /// A count that should be zero: red when it is not.
    pub fn zero(&self, n: u64) -> String {
        if n == 0 {
            n.to_string()
        } else {
            self.nonzero(n)
        }
    }

    fn banner(&self, t: impl Display, background: &str) -> String {
        // Bold bright white on a background, in the order terminals and
        // asciicast players have always been shown by this report.
        if self.color {
            format!("\x1b[1;97;{background}m{t}\x1b[0m")
        } else {
            t.to_string()
        }
    }
}

/// `1.2s`, `350ms`: durations as people read them.
pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_style_adds_no_escapes() {
        let s = Style::plain();
        for t in [
            s.ok("ok"),
            s.bad("x"),
            s.heading("h"),
            s.banner_pass("PASS"),
            s.zero(3),
            s.dim("d"),
        ] {
            assert!(!t.contains('\x1b'), "{t:?}");
        }
    }

    #[test]
    fn colour_is_named_for_meaning() {
        let s = Style::new(true);
        assert_eq!(s.zero(2), "\x1b[31m2\x1b[0m");
        assert_eq!(s.zero(0), "0");
        assert!(s.banner_fail("FAIL").starts_with("\x1b[1;97;41m"));
        assert!(s.bad("x").contains('\x1b'));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(secs(Duration::from_millis(350)), "350ms");
        assert_eq!(secs(Duration::from_millis(1250)), "1.2s");
    }
}
