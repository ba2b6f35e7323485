//! Reconcile sources: where the reconcile step reads what the service
//! stores, id by id (and, where it can, a digest of each one's content).
//! The classification itself is [`crate::reconcile`]'s, the same for all.
//!
//! One trait, [`StoredOrders`], one file per way of listing:
//! - [`example_app`]: the example app's `GET /orders` on B (the default).
//! - [`http`]: a JSON or NDJSON listing over HTTP, page by page.
//! - [`sql`]: a query against PostgreSQL or SQLite, row by row.
//! - [`command`]: a command printing one id per line.
//!
//! `none` has no reader: the report says "not reconciled" instead.
//! Every reader streams: memory stays bounded whatever the store holds.
//! [`lines`] and [`item`] are the pieces several readers share.

pub mod command;
pub mod example_app;
pub mod http;
pub mod item;
pub mod lines;
pub mod sql;

use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use url::Url;

use super::converge::{Converge, ConvergeSource, Positions};
use super::json::check_pointer;
use super::SourceError;
use crate::plan::{ConvergeKind, Plan};
use crate::reconcile::ledger::Ledger;
use crate::reconcile::{ReconcileError, ReconcileOptions};

/// What [`StoredOrders::stream`] returns: the ledger, and how many stored
/// orders were read into it.
pub type Streamed<'a> = BoxFuture<'a, Result<(Ledger, u64), ReconcileError>>;

/// What [`StoredOrders::wait_applied`] returns: the last positions read,
/// and the time waited.
pub type Waited<'a> = BoxFuture<'a, Result<(Positions, Duration), ReconcileError>>;

/// A way of reading what the service stores, id by id.
pub trait StoredOrders: Send + Sync {
    /// `example_app`, `http`, `sql` or `command`: the plan's `reconcile.kind`.
    fn kind(&self) -> &'static str;

    /// One line saying what is read (passwords masked), for the printed
    /// plan and the report.
    fn describe(&self) -> String;

    /// Preflight: reads the first page, row or line only and says what it
    /// found. Fails naming the plan key when the source cannot be read or
    /// does not hold what the plan says. `run` replaces `{run}`.
    fn check<'a>(&'a self, run: Option<&'a str>) -> BoxFuture<'a, Result<String, SourceError>>;

    /// Feeds every stored order into `ledger` as it arrives (never the whole
    /// listing in memory). `run` replaces `{run}`.
    fn stream<'a>(&'a self, ledger: Ledger, run: Option<&'a str>) -> Streamed<'a>;

    /// The plan key whose text uses `{run}`, if any: the reconciliation then
    /// needs to know the run (given, or the runs of the ack logs).
    fn run_key(&self) -> Option<&'static str> {
        None
    }

    /// Waits until the service has applied the store head, when the source
    /// itself can tell (the example app's `/health`): what is polled, and
    /// the wait. `None` when it cannot.
    fn wait_applied<'a>(&'a self, opts: &'a ReconcileOptions) -> Option<(String, Waited<'a>)> {
        let _ = opts;
        None
    }
}

/// The reader the plan asks for; `None` for `kind = "none"`. `b` is B's base
/// URL (the example app is read there). Bad values (a URL that is not one, an
/// unset `url_env`) are errors naming the key; nothing is read yet.
pub fn from_plan(
    plan: &ReconcilePlan,
    b: &Url,
    opts: &ReconcileOptions,
) -> Result<Option<Box<dyn StoredOrders>>, ReconcileError> {
    plan.validate()
        .map_err(|(key, what)| SourceError::Unexpected { key, what })?;
    Ok(Some(match plan {
        ReconcilePlan::ExampleApp => Box::new(example_app::App::new(b, opts)?),
        ReconcilePlan::Http(listing) => Box::new(http::HttpOrders::new(listing.clone(), opts)?),
        ReconcilePlan::Sql(listing) => Box::new(sql::SqlOrders::new(listing, opts)?),
        ReconcilePlan::Command(listing) => {
            Box::new(command::CommandOrders::new(&listing.command, opts))
        }
        ReconcilePlan::None => return Ok(None),
    }))
}

/// What to wait on before reading, for a plan: its converge source when
/// that can say `applied` and `head` — except the default pairing (the
/// example app with the handover health document), where the example app
/// source polls B's `/health` itself, as it always has — and nothing for
/// `converge.kind = "wait"`.
pub fn wait_source(plan: &Plan) -> Result<Option<Box<dyn ConvergeSource>>, String> {
    if plan.reconcile == ReconcilePlan::ExampleApp && plan.converge.kind == ConvergeKind::Health {
        return Ok(None);
    }
    Ok(match super::converge::from_plan(plan)? {
        Converge::Measured(source) => Some(source),
        Converge::Wait(_) => None,
    })
}

impl ReconcilePlan {
    /// Why nothing is reconciled, for the report's `unreconciled`: set for
    /// `kind = "none"`, `None` for every kind that reads a store.
    pub fn unreconciled(&self) -> Option<String> {
        matches!(self, ReconcilePlan::None).then(|| {
            "the plan says reconcile.kind = \"none\": nothing proves the acknowledged writes were stored".to_string()
        })
    }

    /// The plan key and message of the first bad value: a JSON pointer that
    /// is not one, a URL of the wrong scheme, both or neither of `url` and
    /// `url_env`, `{run}` inside a quoted SQL string. Whether the source can
    /// really be read is preflight's ([`StoredOrders::check`]).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |key: &str, message: String| Err((key.to_string(), message));
        match self {
            ReconcilePlan::ExampleApp | ReconcilePlan::None => Ok(()),
            ReconcilePlan::Http(l) => {
                if !matches!(l.url.scheme(), "http" | "https") {
                    return err(
                        "reconcile.url",
                        format!(
                            "{} is not an http(s) URL",
                            crate::redact::passwords(l.url.as_str())
                        ),
                    );
                }
                let pointers = [
                    ("reconcile.id_pointer", Some(&l.id_pointer)),
                    ("reconcile.digest_pointer", l.digest_pointer.as_ref()),
                    ("reconcile.items_pointer", l.items_pointer.as_ref()),
                    ("reconcile.next_pointer", l.next_pointer.as_ref()),
                ];
                for (key, pointer) in pointers {
                    if let Some(p) = pointer {
                        pointer_ok(key, p)?;
                    }
                }
                if l.format == ListFormat::Ndjson {
                    for (key, set) in [
                        ("reconcile.items_pointer", l.items_pointer.is_some()),
                        ("reconcile.next_pointer", l.next_pointer.is_some()),
                    ] {
                        if set {
                            return err(key, "only for format = \"json\": an NDJSON listing has one item per line and pages by its Link header".into());
                        }
                    }
                }
                Ok(())
            }
            ReconcilePlan::Sql(l) => l.validate(),
            ReconcilePlan::Command(l) => {
                if l.command.trim().is_empty() {
                    return err(
                        "reconcile.command",
                        "is empty (it must print one id per line)".into(),
                    );
                }
                Ok(())
            }
        }
    }
}

/// [`check_pointer`] as `(key, message)`.
fn pointer_ok(key: &str, pointer: &str) -> Result<(), (String, String)> {
    check_pointer(key, pointer).map_err(|m| {
        let message = m
            .strip_prefix(&format!("{key}: "))
            .unwrap_or(&m)
            .to_string();
        (key.to_string(), message)
    })
}

/// The placeholder for the run id in a query or command.
pub const RUN: &str = "{run}";

/// `[reconcile]` in the plan: which source, and how to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReconcilePlan {
    /// The example app's `GET /orders` on B (the default).
    #[default]
    ExampleApp,
    /// A JSON or NDJSON listing over HTTP, paginated.
    Http(HttpListing),
    /// A query against the service's database.
    Sql(SqlListing),
    /// A command that prints one id per line (optionally `id<TAB>content`).
    Command(CommandListing),
    /// No proof of storage: the verdict says "not reconciled" and judges
    /// only failures and downtime.
    None,
}

/// `kind = "http"`. Its `Debug` masks a password in `url`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpListing {
    /// The first page.
    pub url: Url,
    #[serde(default)]
    pub format: ListFormat,
    /// Where the array of items is in a JSON page (default: the page is the array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_pointer: Option<String>,
    /// The id inside one item.
    pub id_pointer: String,
    /// The content inside one item, compared by digest with what was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_pointer: Option<String>,
    /// Where a JSON page says the next page's URL (absent or null: last page).
    /// Without it, a `Link: <…>; rel="next"` header is followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_pointer: Option<String>,
}

impl std::fmt::Debug for HttpListing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpListing")
            .field("url", &crate::redact::passwords(self.url.as_str()))
            .field("format", &self.format)
            .field("items_pointer", &self.items_pointer)
            .field("id_pointer", &self.id_pointer)
            .field("digest_pointer", &self.digest_pointer)
            .field("next_pointer", &self.next_pointer)
            .finish()
    }
}

/// How an HTTP listing is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ListFormat {
    /// One JSON document per page.
    #[default]
    Json,
    /// One JSON item per line.
    Ndjson,
}

/// `kind = "sql"`. Its `Debug` masks a password in `url`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlListing {
    /// `postgres://…` or `sqlite:PATH`. A password here is never printed;
    /// better, leave it out and name the variable that holds the URL in `url_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The environment variable holding the URL (read when the run starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// Returns the id column first, optionally the content second; `{run}`
    /// is the run id (bound as a parameter, never pasted into the SQL).
    pub query: String,
}

impl std::fmt::Debug for SqlListing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlListing")
            .field("url", &self.url.as_deref().map(crate::redact::passwords))
            .field("url_env", &self.url_env)
            .field("query", &self.query)
            .finish()
    }
}

/// `kind = "command"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandListing {
    /// Prints one id per line, or `id<TAB>content`; `{run}` is the run id.
    pub command: String,
}

/// For the readers' tests: a ledger of acknowledged ids, each sent with `content`.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn acked_with(ids: &[&str], content: &str) -> Ledger {
    let digest = format!("{:016x}", handover_contract::order::text_digest(content));
    let mut index = crate::reconcile::ledger::AckIndex::new();
    for id in ids {
        let ack = crate::reconcile::ledger::AckView {
            id,
            outcome: handover_contract::Outcome::Ok,
            user_id: None,
            items_digest: Some(&digest),
        };
        index.push(ack).unwrap();
    }
    index.seal()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ReconcilePlan {
        toml::from_str(text).unwrap()
    }

    fn key_of(text: &str) -> String {
        parse(text).validate().unwrap_err().0
    }

    #[test]
    fn every_kind_parses_and_the_default_is_the_example_app() {
        assert_eq!(ReconcilePlan::default(), ReconcilePlan::ExampleApp);
        assert_eq!(parse("kind = \"none\""), ReconcilePlan::None);
        let http = parse(
            "kind = \"http\"\nurl = \"http://svc/items\"\nid_pointer = \"/id\"\nformat = \"ndjson\"",
        );
        assert!(matches!(&http, ReconcilePlan::Http(l) if l.format == ListFormat::Ndjson));
        assert_eq!(http.validate(), Ok(()));
        let sql = parse("kind = \"sql\"\nurl_env = \"ORDERS_DB\"\nquery = \"SELECT id FROM t\"");
        assert_eq!(sql.validate(), Ok(()));
        assert!(toml::from_str::<ReconcilePlan>("kind = \"s3\"").is_err());
        assert!(toml::from_str::<ReconcilePlan>("kind = \"http\"\nurl = \"http://x/\"").is_err());
        assert!(
            toml::from_str::<ReconcilePlan>("kind = \"command\"\ncommand = \"x\"\nextra = 1")
                .is_err()
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let http = "kind = \"http\"\nurl = \"http://svc/items\"\n";
        assert_eq!(
            key_of(&format!("{http}id_pointer = \"id\"")),
            "reconcile.id_pointer"
        );
        assert_eq!(
            key_of(&format!(
                "{http}id_pointer = \"/id\"\ndigest_pointer = \"/a~2\""
            )),
            "reconcile.digest_pointer"
        );
        assert_eq!(
            key_of(&format!(
                "{http}id_pointer = \"/id\"\nformat = \"ndjson\"\nnext_pointer = \"/next\""
            )),
            "reconcile.next_pointer"
        );
        assert_eq!(
            key_of("kind = \"http\"\nurl = \"ftp://svc/\"\nid_pointer = \"/id\""),
            "reconcile.url"
        );
        assert_eq!(
            key_of("kind = \"command\"\ncommand = \" \""),
            "reconcile.command"
        );
        let (key, message) = parse(&format!("{http}id_pointer = \"id\""))
            .validate()
            .unwrap_err();
        assert_eq!(key, "reconcile.id_pointer");
        assert!(
            message.starts_with("\"id\" is not a JSON pointer"),
            "{message}"
        );
    }

    #[test]
    fn only_none_is_unreconciled() {
        assert!(ReconcilePlan::None
            .unreconciled()
            .unwrap()
            .contains("reconcile.kind = \"none\""));
        assert_eq!(ReconcilePlan::ExampleApp.unreconciled(), None);
        let b = Url::parse("http://b/").unwrap();
        assert!(
            from_plan(&ReconcilePlan::None, &b, &ReconcileOptions::default())
                .unwrap()
                .is_none()
        );
        let app = from_plan(&ReconcilePlan::ExampleApp, &b, &ReconcileOptions::default()).unwrap();
        assert_eq!(app.unwrap().kind(), "example_app");
    }

    #[test]
    fn the_password_of_a_listing_url_is_not_in_debug() {
        let http =
            parse("kind = \"http\"\nurl = \"https://u:hunter2@svc/items\"\nid_pointer = \"/id\"");
        assert!(!format!("{http:?}").contains("hunter2"), "{http:?}");
        let sql = parse(
            "kind = \"sql\"\nurl = \"postgres://u:hunter2@db/x\"\nquery = \"SELECT id FROM t\"",
        );
        assert!(!format!("{sql:?}").contains("hunter2"), "{sql:?}");
    }

    #[test]
    fn the_wait_follows_the_converge_source_unless_the_example_app_waits_itself() {
        let plan = |converge: &str, reconcile: &str| {
            Plan::from_toml(&format!(
                "[a]\nurl = \"http://127.0.0.1:1/\"\naddress = \"a\"\nstop = \"true\"\n\
                 [b]\nurl = \"http://127.0.0.1:2/\"\naddress = \"b\"\nstart = \"true\"\n\
                 [switch]\nkind = \"command\"\nflip = \"true\"\nread = \"echo a\"\n\
                 [feeder]\ntarget = \"http://127.0.0.1:3/\"\n\
                 [converge]\n{converge}\n[reconcile]\n{reconcile}\n"
            ))
            .unwrap()
        };
        let http = "kind = \"http\"\nurl = \"http://127.0.0.1:2/items\"\nid_pointer = \"/id\"";
        let waits = |p: &Plan| wait_source(p).unwrap().map(|c| c.describe());
        assert_eq!(
            waits(&plan("kind = \"health\"", "kind = \"example_app\"")),
            None
        );
        assert_eq!(waits(&plan("kind = \"wait\"\nfor = \"1s\"", http)), None);
        let health = waits(&plan("kind = \"health\"", http)).unwrap();
        assert!(health.contains("127.0.0.1:2"), "{health}");
    }
}
