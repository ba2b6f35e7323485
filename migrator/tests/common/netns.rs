//! The scripts that build test hosts in network namespaces
//! (`scripts/two-hosts.sh`, `scripts/walkthrough.sh`): run one with the
//! built binaries, read the report it copied out, and check that it left
//! no namespace behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A finished script: whether it exited 0, its output, the report.
pub struct ScriptRun {
    pub ok: bool,
    pub output: String,
    pub report: serde_json::Value,
    /// The namespace prefix it used (every name starts `{prefix}-`).
    pub prefix: String,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("migrator/ has a parent")
        .to_path_buf()
}

/// Runs `scripts/{script}` with `args` (root required; `None` when not
/// root and `HANDOVER_SKIP_NETNS` is set); `report_env` names the variable
/// through which the script copies its report out.
pub fn run_script(script: &str, args: &[&str], report_env: &str) -> Option<ScriptRun> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root && std::env::var_os("HANDOVER_SKIP_NETNS").is_some() {
        eprintln!("SKIPPED {script}: not root and HANDOVER_SKIP_NETNS is set");
        return None;
    }
    assert!(
        is_root,
        "{script} needs root for network namespaces (set HANDOVER_SKIP_NETNS=1 to skip it explicitly)"
    );
    let bin_dir = crate::common::migrator_bin()
        .parent()
        .expect("binary has a directory")
        .to_path_buf();
    let work = tempfile::tempdir().expect("tempdir");
    let report = work.path().join("report.json");
    // Our own namespace prefix: tests run side by side.
    static RUN: AtomicU32 = AtomicU32::new(0);
    let prefix = format!(
        "ht{}x{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    );
    let out = Command::new("bash")
        .arg(repo_root().join("scripts").join(script))
        .args(args)
        .env("HO_NS_PREFIX", &prefix)
        .env("HANDOVER_BIN_DIR", &bin_dir)
        .env(report_env, &report)
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    let output = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|_| panic!("the run wrote no report ({}):\n{output}", out.status));
    let report = serde_json::from_str(&text).expect("report is JSON");
    assert_no_namespaces_left(&prefix);
    Some(ScriptRun {
        ok: out.status.success(),
        output,
        report,
        prefix,
    })
}

/// Nothing left behind: no namespace of ours survives the script.
pub fn assert_no_namespaces_left(prefix: &str) {
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !list.lines().any(|l| l.starts_with(&format!("{prefix}-"))),
        "namespaces left behind:\n{list}"
    );
}
