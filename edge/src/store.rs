//! Zones and records, persisted to the state file.
//!
//! Every write works on a copy: validate, write the state file (temp file +
//! rename), and only then publish the copy and tell the observer (in the
//! running edge, the proxy's routes). A failed write leaves memory, disk and
//! routing exactly as they were.
//!
//! The store knows nothing of routing: whoever wires the edge together
//! registers an [`Observer`], so records and routes stay one-way.

use crate::config::Config;
use crate::envelope::ApiError;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::record::{new_id, Record, RecordInput, RecordType, WriteMode};
use crate::zone::Zone;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Hears every published state: once when the store opens, then after each
/// write that reached the state file. Called under the store's lock, so
/// observers see the states in the order they were published.
pub type Observer = Box<dyn Fn(&[Zone]) + Send + Sync>;

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    zones: Vec<Zone>,
}

pub struct Store {
    zones: Mutex<Vec<Zone>>,
    path: Option<PathBuf>,
    observer: Observer,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("zones", &self.zones)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Builds the state: the state file's zones win over the config's records;
    /// zones only in the config are added. Persists at once so generated ids
    /// stick, then shows the opened state to `observer`.
    pub fn open(
        config: &Config,
        metrics: Arc<Metrics>,
        observer: Observer,
    ) -> Result<Store, Error> {
        let now = Utc::now();
        let mut zones = match &config.state_file {
            Some(path) => load(path)?,
            None => Vec::new(),
        };
        for zc in &config.zones {
            let name = zc.name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(existing) = zones.iter_mut().find(|z| z.name == name) {
                if let Some(id) = &zc.id {
                    existing.id = id.clone();
                }
                continue;
            }
            let records = zc
                .records
                .iter()
                .map(|r| r.to_record(&name, now))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Config {
                    path: PathBuf::from("edge.toml"),
                    message: format!("zone {name}: {:?}", e.errors),
                })?;
            zones.push(Zone {
                id: zc.id.clone().unwrap_or_else(new_id),
                name,
                created_on: now,
                modified_on: now,
                records,
            });
        }
        if let Some(path) = &config.state_file {
            persist(path, &zones).map_err(|e| Error::State {
                path: path.clone(),
                message: format!("cannot write: {e}"),
            })?;
        }
        observer(&zones);
        Ok(Store {
            zones: Mutex::new(zones),
            path: config.state_file.clone(),
            observer,
            metrics,
        })
    }

    fn snapshot(&self) -> Vec<Zone> {
        self.zones.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn zones(&self) -> Vec<Zone> {
        self.snapshot()
    }

    pub fn zone(&self, zone_id: &str) -> Option<Zone> {
        self.zones
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|z| z.id == zone_id)
            .cloned()
    }

    /// Applies `change` to a copy of the zone, persists, then publishes it.
    fn write<T>(
        &self,
        zone_id: &str,
        change: impl FnOnce(&mut Zone, DateTime<Utc>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut guard = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = guard.clone();
        let zone = next
            .iter_mut()
            .find(|z| z.id == zone_id)
            .ok_or_else(|| ApiError::zone_not_found(&format!("/zones/{zone_id}/dns_records")))?;
        let now = Utc::now();
        let out = change(zone, now)?;
        zone.modified_on = now;
        if let Some(path) = &self.path {
            persist(path, &next).map_err(|e| {
                tracing::error!(path = %path.display(), error = %e, "state file write failed; change rolled back");
                ApiError::internal("Internal error: the change could not be persisted")
            })?;
        }
        *guard = next;
        (self.observer)(&guard);
        self.metrics.record_changed();
        Ok(out)
    }

    pub fn create(&self, zone_id: &str, input: RecordInput) -> Result<(Record, String), ApiError> {
        self.write(zone_id, |zone, now| {
            let rec = input.build(WriteMode::Create, None, &zone.name, now)?;
            check_conflicts(zone, &rec)?;
            zone.records.push(rec.clone());
            Ok((rec, zone.name.clone()))
        })
    }

    pub fn update(
        &self,
        zone_id: &str,
        record_id: &str,
        input: RecordInput,
        mode: WriteMode,
    ) -> Result<(Record, String), ApiError> {
        self.write(zone_id, |zone, now| {
            let idx = record_index(zone, record_id)?;
            let rec = input.build(mode, Some(&zone.records[idx]), &zone.name, now)?;
            check_conflicts(zone, &rec)?;
            zone.records[idx] = rec.clone();
            Ok((rec, zone.name.clone()))
        })
    }

    pub fn delete(&self, zone_id: &str, record_id: &str) -> Result<String, ApiError> {
        self.write(zone_id, |zone, _| {
            let idx = record_index(zone, record_id)?;
            Ok(zone.records.remove(idx).id)
        })
    }
}

/// Where the record sits in its zone; Cloudflare's 81044 when it is not there.
fn record_index(zone: &Zone, record_id: &str) -> Result<usize, ApiError> {
    zone.records
        .iter()
        .position(|r| r.id == record_id)
        .ok_or_else(ApiError::record_not_found)
}

/// Cloudflare refuses exact duplicates (81057) and a CNAME sharing its name (81053).
fn check_conflicts(zone: &Zone, rec: &Record) -> Result<(), ApiError> {
    for other in zone
        .records
        .iter()
        .filter(|o| o.id != rec.id && o.name == rec.name)
    {
        if other.kind == rec.kind && other.content == rec.content {
            return Err(ApiError::bad_request(81057, "Record already exists."));
        }
        if other.kind == RecordType::CNAME || rec.kind == RecordType::CNAME {
            return Err(ApiError::bad_request(
                81053,
                "An A, AAAA, or CNAME record with that host already exists.",
            ));
        }
    }
    Ok(())
}

fn load(path: &Path) -> Result<Vec<Zone>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::State {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        }
    };
    let state: StateFile = serde_json::from_str(&text).map_err(|e| Error::State {
        path: path.to_path_buf(),
        message: format!("not a valid edge state file: {e}"),
    })?;
    Ok(state.zones)
}

/// Writes the whole state to a temporary file beside the target, then renames
/// it over the target, so a crash never leaves a half-written state file.
fn persist(path: &Path, zones: &[Zone]) -> std::io::Result<()> {
    let state = StateFile {
        version: 1,
        zones: zones.to_vec(),
    };
    let bytes = serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "edge-state.json".into());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        let mut c = Config::parse(
            r#"
origin_port = 8080
tokens = ["t"]
state_file = "state.json"
[[zones]]
name = "z.test"
[[zones.records]]
name = "shop"
type = "A"
content = "127.0.0.2"
proxied = true
"#,
        )
        .unwrap();
        c.state_file = Some(dir.join("state.json"));
        c
    }

    fn open(c: &Config) -> Store {
        Store::open(c, Arc::default(), Box::new(|_| {})).unwrap()
    }

    #[test]
    fn state_file_wins_over_config_records_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let store = open(&c);
        let zone = store.zones()[0].clone();
        let rec = zone.records[0].clone();
        let input = RecordInput::from_body(br#"{"content":"127.0.0.3"}"#).unwrap();
        store
            .update(&zone.id, &rec.id, input, WriteMode::Patch)
            .unwrap();
        drop(store);
        let again = open(&c);
        let zones = again.zones();
        assert_eq!(zones[0].id, zone.id, "generated zone id persists");
        assert_eq!(zones[0].records[0].content, "127.0.0.3");
        assert_eq!(zones[0].records.len(), 1);
    }

    #[test]
    fn rejected_writes_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&config(dir.path()));
        let before = store.zones();
        let before_file = std::fs::read(dir.path().join("state.json")).unwrap();
        let zone = &before[0];
        let dup =
            RecordInput::from_body(br#"{"type":"A","name":"shop","content":"127.0.0.2"}"#).unwrap();
        let err = store.create(&zone.id, dup).unwrap_err();
        assert_eq!(err.codes(), vec![81057]);
        let bad = RecordInput::from_body(br#"{"content":"no-ip"}"#).unwrap();
        assert!(store
            .update(&zone.id, &zone.records[0].id, bad, WriteMode::Patch)
            .is_err());
        assert_eq!(store.zones(), before);
        assert_eq!(
            std::fs::read(dir.path().join("state.json")).unwrap(),
            before_file
        );
    }

    #[test]
    fn the_observer_hears_each_published_state_and_no_rejected_one() {
        let dir = tempfile::tempdir().unwrap();
        let heard = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = Arc::clone(&heard);
        let store = Store::open(
            &config(dir.path()),
            Arc::default(),
            Box::new(move |zones| {
                let content = zones[0].records[0].content.clone();
                log.lock().unwrap().push(content);
            }),
        )
        .unwrap();
        let zone = store.zones()[0].clone();
        let rec = &zone.records[0];
        let bad = RecordInput::from_body(br#"{"content":"no-ip"}"#).unwrap();
        assert!(store
            .update(&zone.id, &rec.id, bad, WriteMode::Patch)
            .is_err());
        let good = RecordInput::from_body(br#"{"content":"127.0.0.3"}"#).unwrap();
        store
            .update(&zone.id, &rec.id, good, WriteMode::Patch)
            .unwrap();
        assert_eq!(*heard.lock().unwrap(), ["127.0.0.2", "127.0.0.3"]);
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("state.json"), b"{garbage").unwrap();
        let err = Store::open(&config(dir.path()), Arc::default(), Box::new(|_| {})).unwrap_err();
        assert!(matches!(err, Error::State { .. }), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("state.json")).unwrap(),
            b"{garbage"
        );
    }
}
