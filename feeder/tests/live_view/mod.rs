//! The feeder's live view, recorded: `--cast` draws it off screen when
//! stdout is not a terminal (the per-second lines stay on stdout), so the
//! frames can be read back. The terminal side (raw mode, keys, restoring)
//! is the migrator's tmux test: the same `feeder::view::screen`.

use crate::util::{feeder_cmd, read_report, serve, Reply};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cast_shows_both_instances_while_the_lines_stay_on_stdout() {
    // A for the first half of the run's 600 requests, then B.
    let server = serve(|c| Reply::ok(if c.n < 300 { "a" } else { "b" })).await;
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("feeder.cast");
    let report = dir.path().join("report.json");
    let url = server.url();
    let args = [
        url.as_str(),
        "200",
        "--duration",
        "3s",
        "--cast",
        cast.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    // With colour (no NO_COLOR), so each instance's colour shows in the cast.
    let run = feeder_cmd(&args).env_remove("NO_COLOR").output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // Piped: the lines as before, and no terminal control on stdout.
    assert!(stdout.contains("instance change: a → b"), "{stdout}");
    assert!(
        stdout.contains("result: failed = 0 succeeded = 600"),
        "{stdout}"
    );
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    assert_eq!(read_report(&report).ok, 600);

    let text = std::fs::read_to_string(&cast).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    let mut last = 0.0;
    let mut frames = String::new();
    for line in lines {
        let ev: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = ev[0].as_f64().unwrap();
        assert!(t >= last, "time went back: {t} after {last}");
        last = t;
        frames.push_str(ev[2].as_str().unwrap());
    }
    // A frame every 100 ms over the 3 s run.
    assert!(last >= 2.5, "the cast covers {last} s");
    for want in [&url[..url.len() - 1], "■", "sent", "p99"] {
        assert!(frames.contains(want), "{want} never drawn");
    }
    // Each instance drawn in its own colour: a blue, b green (SGR 38;5;n).
    for (name, sgr) in [("a", "38;5;4"), ("b", "38;5;2")] {
        assert!(frames.contains(sgr), "instance {name} never drawn");
    }
}
