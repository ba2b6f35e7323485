//! Import files: `EventType {json}` lines (companies and users), and the seed
//! compiled into the binary so a fresh store serves users at once.
//!
//! A file is parsed and checked whole before anything is appended, so a bad
//! line changes nothing. Appending is idempotent: an id already in the store
//! keeps its first event.

use std::collections::HashSet;

use futures::future::try_join_all;

use crate::domain::{self, Event};
use crate::projection::Projection;
use crate::store::{EventStore, StoreError};

/// The bundled seed data: a few companies and 60 users (`u-0001` …).
pub const SEED: &str = include_str!("../seed/seed.txt");

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Events appended by this import.
    pub added: usize,
    /// Events whose id was already in the store.
    pub existing: usize,
}

/// Parses an import file. Blank lines and `#` comments are skipped. A user
/// must name a company from the file or from `known_companies`.
pub fn parse(text: &str, known_companies: &HashSet<String>) -> Result<Vec<Event>, ImportError> {
    let mut events = Vec::new();
    let mut companies: HashSet<String> = HashSet::new();
    let mut users: HashSet<String> = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| ImportError::Line { line, message };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (kind, json) = trimmed
            .split_once(char::is_whitespace)
            .ok_or_else(|| err("expected `EventType {json}`".into()))?;
        let event = match kind {
            domain::COMPANY_REGISTERED | domain::USER_REGISTERED => {
                Event::decode(kind, json.trim()).map_err(|e| err(e.to_string()))?
            }
            other => {
                return Err(err(format!(
                    "unsupported event type {other:?} (expected {} or {})",
                    domain::COMPANY_REGISTERED,
                    domain::USER_REGISTERED
                )))
            }
        };
        match &event {
            Event::CompanyRegistered(c) => {
                check_entity(&c.id, &c.name).map_err(err)?;
                if !companies.insert(c.id.clone()) {
                    return Err(err(format!("company {:?} appears twice", c.id)));
                }
            }
            Event::UserRegistered(u) => {
                check_entity(&u.id, &u.name).map_err(err)?;
                if !companies.contains(&u.company_id) && !known_companies.contains(&u.company_id) {
                    return Err(err(format!(
                        "user {:?} names unknown company {:?}",
                        u.id, u.company_id
                    )));
                }
                if !users.insert(u.id.clone()) {
                    return Err(err(format!("user {:?} appears twice", u.id)));
                }
            }
            Event::OrderPlaced(_) => return Err(err("orders cannot be imported".into())),
        }
        events.push(event);
    }
    Ok(events)
}

fn check_entity(id: &str, name: &str) -> Result<(), String> {
    if !domain::valid_id(id) {
        return Err(format!(
            "id {id:?} must be 1-64 characters of A-Z a-z 0-9 _ . : -"
        ));
    }
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(format!("name of {id:?} must be 1-200 characters"));
    }
    Ok(())
}

/// Parses `text` and appends its events (all at once, so they share commits).
///
/// Entities the (caught-up) projection already holds are in the store and
/// are not appended again: an instance starting on a seeded store, as B does
/// during a migration, then writes nothing, so its start takes no turn at the
/// store's write lock while A is committing under load.
pub async fn import(
    store: &dyn EventStore,
    projection: &Projection,
    text: &str,
) -> Result<ImportSummary, ImportError> {
    let companies = projection.company_ids();
    let events = parse(text, &companies)?;
    let held = |e: &&Event| match e {
        Event::CompanyRegistered(c) => companies.contains(&c.id),
        Event::UserRegistered(u) => projection.has_user(&u.id),
        Event::OrderPlaced(o) => projection.has_order(&o.id),
    };
    let new = events.iter().filter(|e| !held(e));
    let results = try_join_all(new.map(|e| store.append(e.to_new_event()))).await?;
    let added = results.iter().filter(|a| a.created).count();
    Ok(ImportSummary {
        added,
        existing: events.len() - added,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An instance starting on a store that holds the seed (B during a
    /// migration) appends nothing: the scripted store fails every append.
    #[tokio::test]
    async fn a_seed_already_in_the_store_is_not_appended_again() {
        use crate::store::scripted::ScriptedStore;
        use crate::store::StoredEvent;
        let stored: Vec<StoredEvent> = parse(SEED, &HashSet::new())
            .unwrap()
            .iter()
            .zip(1..)
            .map(|(e, position)| {
                let n = e.to_new_event();
                StoredEvent {
                    position,
                    kind: n.kind,
                    key: n.key,
                    payload: n.payload,
                }
            })
            .collect();
        let count = stored.len();
        let projection = Projection::new();
        projection.apply(&stored);
        let store = ScriptedStore::with_events(stored);
        let summary = import(&*store, &projection, SEED).await.unwrap();
        assert_eq!(
            summary,
            ImportSummary {
                added: 0,
                existing: count
            }
        );
        // A projection that lacks them does append (and the scripted store says no).
        assert!(import(&*store, &Projection::new(), SEED).await.is_err());
    }

    #[test]
    fn seed_is_valid_and_large_enough() {
        let events = parse(SEED, &HashSet::new()).expect("seed parses");
        let users = events
            .iter()
            .filter(|e| matches!(e, Event::UserRegistered(_)))
            .count();
        assert!(users >= 50, "{users} users");
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::UserRegistered(u) if u.id == "u-0001")));
    }

    #[test]
    fn bad_lines_name_the_line() {
        let cases = [
            ("CompanyRegistered", "expected"),
            ("OrderPlaced {}", "unsupported"),
            ("CompanyRegistered {\"id\":\"c 1\",\"name\":\"x\"}", "id"),
            ("CompanyRegistered {not json}", "invalid"),
            (
                "UserRegistered {\"id\":\"u1\",\"name\":\"x\",\"company_id\":\"nope\"}",
                "unknown company",
            ),
            ("CompanyRegistered {\"id\":\"c1\",\"name\":\"\"}", "name"),
        ];
        for (text, want) in cases {
            let text = format!("# header\n\n{text}\n");
            match parse(&text, &HashSet::new()) {
                Err(ImportError::Line { line, message }) => {
                    assert_eq!(line, 3, "{text}");
                    assert!(message.contains(want), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn duplicates_in_one_file_are_refused() {
        let text = "CompanyRegistered {\"id\":\"c1\",\"name\":\"A\"}\nCompanyRegistered {\"id\":\"c1\",\"name\":\"B\"}\n";
        assert!(matches!(
            parse(text, &HashSet::new()),
            Err(ImportError::Line { line: 2, .. })
        ));
    }

    #[test]
    fn users_may_name_companies_already_in_the_store() {
        let known: HashSet<String> = ["c-9".to_string()].into();
        let text = "UserRegistered {\"id\":\"u1\",\"name\":\"A\",\"company_id\":\"c-9\"}";
        assert_eq!(parse(text, &known).expect("known").len(), 1);
    }
}
