//! Secrets stay secret: the Cloudflare token and the store's password are
//! searched for in everything a run prints or leaves behind — stdout and
//! stderr, the report, the SVG, the ack log, the plan copy, every process's
//! log in the workdir.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::pg::{pg_sh, Pg};
use common::*;

/// Every file under `dir` that contains `secret`.
fn files_containing(dir: &Path, secret: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                    hits.push(path.display().to_string());
                }
            }
        }
    }
    hits
}

#[test]
fn the_store_password_is_nowhere_in_a_demo_on_postgres() {
    let pg = Pg::start_owned();
    let password = url::Url::parse(&pg.url)
        .unwrap()
        .password()
        .map(str::to_string)
        .filter(|p| p.len() >= 8)
        .expect("scripts/pg.sh gives the cluster a password");
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let stop = format!("{} stop {}", pg_sh().display(), pg.data().display());
    let start = format!("{} start {}", pg_sh().display(), pg.data().display());
    let plot = work.join("handover.svg");
    std::fs::create_dir_all(&work).unwrap();
    let out = run_migrator(
        &[
            "demo",
            "--rate",
            "100",
            "--duration",
            "6s",
            "--store",
            &pg.url,
            "--store-stop",
            &stop,
            "--store-start",
            &start,
            "--fault",
            "converge:restart-store:1s",
            "--workdir",
            work.to_str().unwrap(),
            "--plot",
            plot.to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(300),
    );
    assert!(plot.exists(), "{}\n{}", out.stdout, out.stderr);
    assert!(work.join("plan.toml").exists());
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(!text.contains(&password), "the password is in the {name}");
    }
    let hits = files_containing(&work, &password);
    assert!(hits.is_empty(), "the password is in {hits:?}");
    // The search does find what is there: the record name is in the plan.
    assert!(!files_containing(&work, migrator::demo::RECORD).is_empty());
}

#[test]
fn the_api_token_is_nowhere_in_a_run() {
    let stage = Stage::start("");
    let token = stage.token.clone();
    let plot = stage.dir.path().join("handover.svg");
    let dry = stage.run_plan(&stage.plan(), &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}\n{}", dry.stdout, dry.stderr);
    let run = stage.run_plan(
        &stage.plan(),
        &[
            "--report",
            stage.dir.path().join("report.json").to_str().unwrap(),
            "--plot",
            plot.to_str().unwrap(),
            "--workdir",
            stage.dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(plot.exists());
    for out in [&dry, &run] {
        assert!(!out.stdout.contains(&token) && !out.stderr.contains(&token));
    }
    // The plan the test wrote holds no token (it comes from the
    // environment); nothing the run wrote does either.
    let hits = files_containing(stage.dir.path(), &token);
    assert!(hits.is_empty(), "the token is in {hits:?}");
}
