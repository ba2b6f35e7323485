//! `scripts/provision/` (issue 12): the control script on a real example-app,
//! the tuning and provisioning scripts' refusals, and the lint of everything
//! shipped (shellcheck, the cloud-init YAML, Docker's own Dockerfile parser).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{eventually, sibling_bin};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .join("scripts")
        .join(name)
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `handover-service CMD` with the configuration in `conf`.
fn service(conf: &Path, cmd: &str) -> Output {
    Command::new(script("provision/handover-service"))
        .arg(cmd)
        .env("HANDOVER_CONF", conf)
        .env("HANDOVER_NO_SYSTEMD", "1")
        .output()
        .expect("run handover-service")
}

fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Start, refuse a second start, stop gracefully, start again and kill:
/// the plain-process path the rehearsal (and any host without systemd) uses.
#[test]
fn handover_service_starts_stops_and_kills_a_real_example_app() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = migrator::demo::shared_free_port().expect("port");
    let conf = dir.path().join("example-app.env");
    let run = dir.path().join("run");
    std::fs::write(
        &conf,
        format!(
            "HANDOVER_LISTEN=127.0.0.1:{port}\nHANDOVER_INSTANCE=svc\nHANDOVER_STORE=sqlite:{}\nBIN={}\nRUN_DIR={}\nSTOP_TIMEOUT=10\n",
            dir.path().join("events.db").display(),
            sibling_bin("example-app").display(),
            run.display()
        ),
    )
    .expect("conf");
    let pid_file = run.join("example-app.pid");
    let pid = || -> i32 {
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let answers = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    // Whatever happens below, the app does not outlive the test.
    struct Reap(PathBuf);
    impl Drop for Reap {
        fn drop(&mut self) {
            if let Some(p) = std::fs::read_to_string(&self.0)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
    let _reap = Reap(pid_file.clone());

    let o = service(&conf, "start");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        eventually(Duration::from_secs(15), answers),
        "the app listens"
    );
    let o = service(&conf, "status");
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("running pid"),
        "{}",
        text(&o)
    );
    let o = service(&conf, "start");
    assert_eq!(
        o.status.code(),
        Some(2),
        "a second start is refused: {}",
        text(&o)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("already running"));

    let first = pid();
    let o = service(&conf, "stop");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !pid_alive(first),
        "stop returns once the process has exited"
    );
    let o = service(&conf, "status");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    let o = service(&conf, "start");
    assert!(o.status.success(), "{}", text(&o));
    let second = pid();
    assert!(eventually(Duration::from_secs(15), answers));
    let o = service(&conf, "kill");
    assert!(o.status.success(), "{}", text(&o));
    assert!(!pid_alive(second), "kill is SIGKILL, at once");
}

#[test]
fn provisioning_refuses_bad_input_and_never_prints_the_store_url() {
    let tune = |args: &[&str]| {
        Command::new(script("provision/tune.sh"))
            .args(args)
            .output()
            .expect("tune.sh")
    };
    let o = tune(&["--rate", "fast"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--rate"));
    let o = tune(&["--rate", "1000", "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    for key in [
        "net.core.somaxconn = 10000",
        "net.ipv4.tcp_max_syn_backlog = 10000",
        "net.ipv4.ip_local_port_range = 1024 65535",
        "soft nofile 65536",
    ] {
        assert!(out.contains(key), "{key} sized from 1000/s × 10 s:\n{out}");
    }
    // --check measures this machine: every setting gets a row and a result.
    let o = tune(&["--rate", "1000", "--check"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    assert!(
        out.contains("net.core.somaxconn") && out.contains("nofile"),
        "{out}"
    );

    let provision = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new(script("provision/provision.sh"));
        c.args(args)
            .env_remove("HANDOVER_STORE")
            .env_remove("HANDOVER_DB_PASSWORD");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("provision.sh")
    };
    let o = provision(&[], &["app", "--instance", "a", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HANDOVER_STORE is not set"));
    let o = provision(&[], &["app", "--instance", "bad name", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let secret = "postgres://shop:hunter2-do-not-print@db:5432/shop";
    let o = provision(
        &[("HANDOVER_STORE", secret)],
        &["app", "--instance", "a", "--rate", "100", "--dry-run"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("hunter2"), "{}", text(&o));
    let o = provision(&[], &["store", "--allow", "10.0.0.0/8", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HANDOVER_DB_PASSWORD"));
    let o = provision(
        &[("HANDOVER_DB_PASSWORD", "pw")],
        &["store", "--allow", "10.0.0.1", "--dry-run"],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "a bare address is not a CIDR: {}",
        text(&o)
    );
}

/// shellcheck, the cloud-init YAML and Docker's own Dockerfile parser
/// (`scripts/lint-provision.sh`; a docker build too where a daemon answers).
#[test]
fn what_provision_ships_passes_its_linters() {
    let o = Command::new(script("lint-provision.sh"))
        .output()
        .expect("lint-provision.sh");
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("provisioning lint clean"));
}
