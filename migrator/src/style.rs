//! Colour and number formatting for what people read, in one place: plain
//! under `NO_COLOR` or when stdout is not a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use colored::{ColoredString, Colorize};

/// The styles of the step printer, named for what they mean.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = !no_color && std::io::stdout().is_terminal();
        colored::control::set_override(color);
        Style { color }
    }

    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, s: &str, f: impl Fn(&str) -> ColoredString) -> String {
        if self.color {
            f(s).to_string()
        } else {
            s.to_string()
        }
    }

    pub fn step(&self, s: &str) -> String {
        self.paint(s, |s| s.bold())
    }
    pub fn ok(&self, s: &str) -> String {
        self.paint(s, |s| s.green().bold())
    }
    pub fn fail(&self, s: &str) -> String {
        self.paint(s, |s| s.red().bold())
    }
    pub fn warn(&self, s: &str) -> String {
        self.paint(s, |s| s.yellow())
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint(s, |s| s.dimmed())
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
        assert_eq!(s.ok("ok"), "ok");
        assert_eq!(s.fail("x"), "x");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(secs(Duration::from_millis(350)), "350ms");
        assert_eq!(secs(Duration::from_millis(1250)), "1.2s");
    }
}
