//! One short round of the ping-pong soak (`scripts/soak.sh`): two cutovers,
//! A→B then back, on one store behind one edge, each passing with nothing
//! lost or failed. The long soak (10 rounds at 1,000/s) is the script's.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

#[test]
fn two_migrations_back_and_forth_pass_with_nothing_lost() {
    let bins = sibling_bin("example-app");
    let bin_dir = bins.parent().unwrap();
    sibling_bin("edge");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/soak.sh");
    let mut child = std::process::Command::new(script)
        .env("ROUNDS", "2")
        .env("RATE", "200")
        .env("BIN_DIR", bin_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            // SIGTERM: the script's trap ends what it started.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
            panic!("the soak round did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rounds: Vec<&str> = stdout.lines().filter(|l| l.contains(" pass ")).collect();
    assert_eq!(rounds.len(), 2, "{stdout}");
}
