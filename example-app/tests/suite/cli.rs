//! The command line: help, start-up errors (exit 2, nothing changed), import.

use std::process::{Command, Stdio};

use super::sqlite::temp_store;
use super::util::*;

pub(super) fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_works() {
    let out = Command::new(BIN).arg("--help").output().expect("help");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--store",
        "--instance-id",
        "--import",
        "HANDOVER_STORE",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
    assert!(!text.contains("test-hooks"), "hidden flag shown");
}

#[test]
fn bad_store_urls_exit_2_with_one_clear_error() {
    let cases = [
        ("mysql://root:hunter2@localhost/db", "unsupported store URL"),
        (
            "sqlite:/nonexistent-dir/sub/events.db",
            "cannot open sqlite store",
        ),
    ];
    for (url, want) in cases {
        let (code, err) = run_to_exit(&["--listen", "127.0.0.1:0", "--store", url]);
        assert_eq!(code, Some(2), "{url}: {err}");
        assert!(err.contains(want), "{url}: {err}");
        assert!(!err.contains("hunter2"), "password printed: {err}");
    }
    let (code, _) = run_to_exit(&["--listen", "not-an-address"]);
    assert_eq!(code, Some(2));
}

#[test]
fn a_file_that_is_not_a_database_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("junk.db");
    std::fs::write(&path, vec![b'x'; 8192]).expect("write");
    let (code, err) = run_to_exit(&[
        "--listen",
        "127.0.0.1:0",
        "--store",
        &format!("sqlite:{}", path.display()),
    ]);
    assert_eq!(code, Some(2), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_idempotent_and_a_bad_file_changes_nothing() {
    let (dir, url) = temp_store();
    let file = dir.path().join("more.txt");
    std::fs::write(
        &file,
        "# extra data\nCompanyRegistered {\"id\":\"c-x\",\"name\":\"Extra\"}\nUserRegistered {\"id\":\"u-x1\",\"name\":\"Xavier\",\"company_id\":\"c-x\"}\n",
    )
    .expect("write");
    let file_arg = file.display().to_string();
    {
        let a = AppProc::start(&url, "a", &["--import", &file_arg]);
        let c = client();
        let users = get_json(&c, &a, "/users").await.body;
        assert!(users
            .as_array()
            .expect("array")
            .iter()
            .any(|u| u["id"] == "u-x1"));
        assert_eq!(
            post_order(&c, &a, &order_body("imp-1", "u-x1", 1))
                .await
                .status,
            201
        );
    }
    let store = open_store(&url).await;
    let before = head(&*store).await;
    {
        // Again, plus the seed again: nothing new.
        let _a = AppProc::start(&url, "a", &["--import", &file_arg]);
        assert_eq!(head(&*store).await, before, "re-import appended");
    }
    let bad = dir.path().join("bad.txt");
    std::fs::write(
        &bad,
        "CompanyRegistered {\"id\":\"c-y\",\"name\":\"Y\"}\nUserRegistered {\"id\":\"u-y\",\"name\":\"Y\",\"company_id\":\"nope\"}\n",
    )
    .expect("write");
    let (code, err) = run_to_exit(&[
        "--listen",
        "127.0.0.1:0",
        "--store",
        &url,
        "--import",
        &bad.display().to_string(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(head(&*store).await, before, "a bad import appended");
    let (code, err) = run_to_exit(&[
        "--listen",
        "127.0.0.1:0",
        "--store",
        &url,
        "--import",
        "/nonexistent/file",
    ]);
    assert_eq!(code, Some(2), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_store_is_seeded_once_and_env_fallbacks_work() {
    let (_dir, url) = temp_store();
    let mut child = Command::new(BIN)
        .env("HANDOVER_LISTEN", "127.0.0.1:0")
        .env("HANDOVER_STORE", &url)
        .env("HANDOVER_INSTANCE", "from-env")
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("line");
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value = serde_json::from_str(&line).expect("json");
    assert_eq!(v["instance"], "from-env");
    assert!(v["addr"].as_str().expect("addr").starts_with("127.0.0.1:"));
    let store = open_store(&url).await;
    let seeded = head(&*store).await;
    assert!(seeded >= 50);
    let _b = AppProc::start(&url, "b", &[]);
    assert_eq!(head(&*store).await, seeded, "seed appended twice");
}
