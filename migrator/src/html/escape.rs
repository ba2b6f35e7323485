//! Text into HTML: every string the report carries (step details, reasons,
//! order ids, instance names) comes from a plan, a service or the network,
//! so all of it is escaped before it reaches the page.

use std::fmt::{self, Display, Write};

/// `s` escaped for HTML text and double-quoted attribute values.
pub struct Esc<'a>(pub &'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        let s = Esc(r#"<script>alert("x")</script> & 'y'"#).to_string();
        assert_eq!(
            s,
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(Esc("plain ✓ text").to_string(), "plain ✓ text");
    }
}
