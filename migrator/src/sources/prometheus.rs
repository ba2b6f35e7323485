//! Reading one number from a Prometheus text exposition (`/metrics`): the
//! metric's samples whose labels include the plan's labels, summed — a
//! counter kept per route or per status is one number for the plan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{fetch, SourceError};

/// `{ url, metric, labels }` in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricQuery {
    /// Where the exposition is served (`http://b:9090/metrics`).
    pub url: Url,
    /// The metric's name (for a histogram or summary, the full sample name,
    /// e.g. `http_requests_count`).
    pub metric: String,
    /// Labels a sample must carry (others may be there too).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl MetricQuery {
    /// `metric{label="value"} at url`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}{} at {}",
            self.metric,
            label_text(&self.labels),
            self.url
        )
    }

    /// Static checks of the plan's values; `key` names the query in errors.
    pub fn validate(&self, key: &str) -> Result<(), String> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.chars().enumerate().all(|(i, c)| {
                    c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
                })
        };
        if !name_ok(&self.metric) {
            return Err(format!(
                "{key}.metric: {:?} is not a metric name",
                self.metric
            ));
        }
        if let Some(l) = self.labels.keys().find(|l| !name_ok(l) || l.contains(':')) {
            return Err(format!("{key}.labels: {l:?} is not a label name"));
        }
        if !matches!(self.url.scheme(), "http" | "https") {
            return Err(format!("{key}.url: {} is not an http(s) URL", self.url));
        }
        Ok(())
    }

    /// Fetches the exposition and returns the sum.
    pub async fn read(&self, http: &reqwest::Client, key: &str) -> Result<f64, SourceError> {
        let body = fetch(http, key, &self.url).await?;
        let text = String::from_utf8_lossy(&body);
        sum(&text, &self.metric, &self.labels).map_err(|what| match what {
            Lookup::Absent(what) => SourceError::Missing {
                key: key.to_string(),
                what: format!("{}: {what}", self.describe()),
            },
            Lookup::Malformed(what) => SourceError::Unexpected {
                key: key.to_string(),
                what: format!("{}: {what}", self.url),
            },
        })
    }
}

fn label_text(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

/// Why a sum could not be had.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// No sample of that metric with those labels.
    Absent(String),
    /// The text is not the exposition format.
    Malformed(String),
}

/// The sum of `metric`'s samples carrying `labels`, from exposition `text`.
pub fn sum(text: &str, metric: &str, labels: &BTreeMap<String, String>) -> Result<f64, Lookup> {
    let mut total = 0.0;
    let mut matched = 0usize;
    let mut same_name = 0usize;
    let mut declared = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            // `# TYPE name counter` / `# HELP name …`: the metric exists even
            // before its first sample (a labelled counter nothing counted
            // yet reads 0; once it has samples, labels that match none of
            // them are a mistake, not a zero).
            let mut words = comment.split_whitespace();
            if matches!(words.next(), Some("TYPE" | "HELP")) && words.next() == Some(metric) {
                declared = true;
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let sample = parse_sample(line)
            .map_err(|why| Lookup::Malformed(format!("line {}: {why}: {line:?}", n + 1)))?;
        if sample.name != metric {
            continue;
        }
        same_name += 1;
        if labels
            .iter()
            .all(|(k, v)| sample.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        {
            matched += 1;
            total += sample.value;
        }
    }
    match (matched, same_name) {
        (0, 0) if declared => Ok(0.0),
        (0, 0) => Err(Lookup::Absent("no such metric".into())),
        (0, n) => Err(Lookup::Absent(format!(
            "{n} sample(s) of the metric, none with those labels"
        ))),
        _ if !total.is_finite() => Err(Lookup::Malformed(format!(
            "{metric} sums to {total}, not a number"
        ))),
        _ => Ok(total),
    }
}

/// One sample line: `name{l="v",…} value [timestamp]`.
#[derive(Debug, PartialEq)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("no metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = parse_labels(after)?;
        labels = parsed;
        rest = tail;
    }
    let value = rest.split_whitespace().next().ok_or("no value")?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse::<f64>().map_err(|_| "the value is not a number")?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses `l="v",…}` and returns the labels and what follows the `}`.
/// A sample's labels, in the order written.
type Labels = Vec<(String, String)>;

fn parse_labels(mut s: &str) -> Result<(Labels, &str), &'static str> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(tail) = s.strip_prefix('}') {
            return Ok((labels, tail));
        }
        let eq = s.find('=').ok_or("a label without a value")?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start();
        s = s.strip_prefix('"').ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("an unterminated label value"),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value"),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((key, value));
        s = s[end + 1..].trim_start();
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP kv_requests_total Requests served.
# TYPE kv_requests_total counter
kv_requests_total{route="/kv",status="200"} 120
kv_requests_total{route="/kv",status="500"} 3
kv_requests_total{route="/list",status="200"} 7 1700000000000
kv_applied_index 4.2e3
odd_labels{path="a\"b\\c",note="x\ny"} 1
"#;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sums_every_label_set_that_matches() {
        assert_eq!(sum(TEXT, "kv_requests_total", &labels(&[])), Ok(130.0));
        assert_eq!(
            sum(TEXT, "kv_requests_total", &labels(&[("route", "/kv")])),
            Ok(123.0)
        );
        assert_eq!(
            sum(TEXT, "kv_requests_total", &labels(&[("status", "200")])),
            Ok(127.0)
        );
        assert_eq!(sum(TEXT, "kv_applied_index", &labels(&[])), Ok(4200.0));
    }

    #[test]
    fn a_declared_metric_with_no_sample_yet_reads_as_zero() {
        let text =
            "# HELP kv_requests_total Requests.\n# TYPE kv_requests_total counter\nother 1\n";
        assert_eq!(
            sum(text, "kv_requests_total", &labels(&[("route", "/kv")])),
            Ok(0.0)
        );
        assert_eq!(
            sum(text, "kv_request_total", &labels(&[])),
            Err(Lookup::Absent("no such metric".into()))
        );
    }

    #[test]
    fn escaped_label_values_are_read() {
        assert_eq!(
            sum(
                TEXT,
                "odd_labels",
                &labels(&[("path", "a\"b\\c"), ("note", "x\ny")])
            ),
            Ok(1.0)
        );
    }

    #[test]
    fn a_missing_metric_or_label_set_says_which() {
        assert_eq!(
            sum(TEXT, "nope", &labels(&[])),
            Err(Lookup::Absent("no such metric".into()))
        );
        let e = sum(TEXT, "kv_requests_total", &labels(&[("route", "/x")])).unwrap_err();
        assert!(
            matches!(e, Lookup::Absent(ref w) if w.contains("3 sample")),
            "{e:?}"
        );
    }

    #[test]
    fn malformed_text_is_an_error_not_a_zero() {
        for bad in [
            "<html>not metrics</html>",
            "kv_x{a=\"1\" 3",
            "kv_x{a=1} 3",
            "kv_x twelve",
        ] {
            let e = sum(bad, "kv_x", &labels(&[])).unwrap_err();
            assert!(matches!(e, Lookup::Malformed(_)), "{bad}: {e:?}");
        }
        let e = sum("kv_x NaN\n", "kv_x", &labels(&[])).unwrap_err();
        assert!(matches!(e, Lookup::Malformed(_)), "{e:?}");
    }

    #[test]
    fn plan_values_are_checked() {
        let q = |metric: &str, label: &str| MetricQuery {
            url: Url::parse("http://b:9090/metrics").unwrap_or_else(|_| unreachable!()),
            metric: metric.into(),
            labels: labels(&[(label, "x")]),
        };
        assert!(q("kv_applied", "route")
            .validate("converge.applied")
            .is_ok());
        let e = q("9lives", "route")
            .validate("converge.applied")
            .unwrap_err();
        assert!(e.starts_with("converge.applied.metric"), "{e}");
        let e = q("kv", "a-b").validate("converge.applied").unwrap_err();
        assert!(e.starts_with("converge.applied.labels"), "{e}");
    }
}
