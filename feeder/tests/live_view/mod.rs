//! The feeder's live view, recorded: `--cast` draws it off screen when
//! stdout is not a terminal (the per-second lines stay on stdout), so the
//! frames can be read back. The terminal side (raw mode, keys, restoring)
//! is the migrator's tmux test: the same `feeder::view::screen`.

use crate::util::{run_reported, serve, Reply};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cast_shows_both_instances_while_the_lines_stay_on_stdout() {
    let server = serve(|c| {
        if c.elapsed < Duration::from_millis(1_500) {
            Reply::ok("a")
        } else {
            Reply::ok("b")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("feeder.cast");
    let url = server.url();
    let args = [
        url.as_str(),
        "200",
        "--duration",
        "3s",
        "--cast",
        cast.to_str().unwrap(),
    ];
    let (out, report) = run_reported(&args).await;
    // Piped: the lines as before, and no terminal control on stdout.
    out.assert_stdout_has("instance change: a → b");
    out.assert_stdout_has("result: failed = 0 succeeded = 600");
    assert!(!out.stdout.contains("\u{1b}["), "{}", out.stdout);
    assert_eq!(report.ok, 600);

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
    // The legend: "■ a 200/s" per instance (colour codes sit before the name).
    for name in ["a", "b"] {
        let legend = frames.match_indices("/s").any(|(i, _)| {
            frames[..i]
                .trim_end_matches(|c: char| c.is_ascii_digit())
                .ends_with(&format!("m{name} "))
        });
        assert!(legend, "instance {name} never in the legend");
    }
}
