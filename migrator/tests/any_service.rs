//! `migrator run` moving services that are not the example app, with real
//! processes (the services of `sample-services/`, written for this):
//!
//! - `kv-service`, a key-value store on a shared replicated log, behind a
//!   real HAProxy whose runtime API is the traffic switch (`switch.kind =
//!   "command"`): writes are template PUTs naming the instance in the reply
//!   body, converge and drain read Prometheus metrics, the reconciliation
//!   reads the paginated JSON listing;
//! - `pg-orders`, an HTTP API in front of PostgreSQL behind the edge
//!   (Cloudflare switch): the instance is a non-default reply header,
//!   convergence is a wait, the drain is seen in the replies, and the
//!   reconciliation is an SQL query.
//!
//! A service that loses acknowledged writes fails the verdict with the ids.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::pg::Pg;
use common::*;
use migrator::report::MigrationReport;

const RUN: Duration = Duration::from_secs(240);

/// A free TCP port on 127.0.0.1 (HAProxy cannot report the one it was given).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy in front of A (127.0.0.2) and B (127.0.0.3, in maintenance),
/// its runtime API on a unix socket.
struct Haproxy {
    _proc: Proc,
    front: SocketAddr,
    socket: PathBuf,
}

impl Haproxy {
    fn start(dir: &Path, port: u16) -> Haproxy {
        let socket = dir.join("haproxy.sock");
        let front: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let cfg = format!(
            "global\n  stats socket {sock} mode 600 level admin\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
             frontend shop\n  bind {front}\n  default_backend kv\n\
             backend kv\n  server a 127.0.0.2:{port}\n  server b 127.0.0.3:{port} disabled\n",
            sock = socket.display()
        );
        let cfg_path = dir.join("haproxy.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("haproxy is installed by scripts/test.sh");
        let proc = Proc {
            child,
            name: "haproxy".into(),
        };
        assert!(
            eventually(Duration::from_secs(20), || answers(front)
                && socket.exists()),
            "haproxy did not start; see {}",
            dir.join("haproxy.log").display()
        );
        Haproxy {
            _proc: proc,
            front,
            socket,
        }
    }

    /// The runtime API as the plan's switch commands: the server named by
    /// each address is taken out of maintenance or put into it.
    fn switch_toml(&self) -> String {
        let sock = self.socket.display();
        let name =
            r#"s() { case "$1" in 127.0.0.2) echo a;; 127.0.0.3) echo b;; *) exit 2;; esac; }"#;
        format!(
            "[switch]\nkind = \"command\"\n\
             flip = '''{name}; printf 'set server kv/%s state ready; set server kv/%s state maint\\n' \"$(s {{to}})\" \"$(s {{from}})\" | socat - UNIX-CONNECT:{sock}'''\n\
             read = '''echo 'show servers state kv' | socat - UNIX-CONNECT:{sock} | awk '$4 ~ /^[ab]$/ && $6 == 2 {{print $5}}' '''\n"
        )
    }

    /// Where HAProxy sends new requests now.
    fn target(&self) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo 'show servers state kv' | socat - UNIX-CONNECT:{} | awk '$4 ~ /^[ab]$/ && $6 == 2 {{print $5}}'",
                self.socket.display()
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A kv-service instance on `ip:port` sharing `log`.
fn kv_command(ip: &str, port: u16, log: &Path, name: &str, extra: &str) -> String {
    format!(
        "exec {} --listen {ip}:{port} --log {} --instance {name} --follow-every 100ms {extra}",
        sibling_bin("kv-service").display(),
        log.display()
    )
}

fn start_sh(cmd: &str, name: &str, log: &Path) -> Proc {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd);
    spawn_server(c, name, log).0
}

/// Runs `plan` (TOML text) with `env`; returns the result and the report.
fn migrate(dir: &Path, plan: &str, env: &[(&'static str, String)]) -> (Finished, MigrationReport) {
    let plan_path = dir.join("plan.toml");
    std::fs::write(&plan_path, plan).unwrap();
    let report = dir.join("report.json");
    let out = run_with_env(
        &[
            "run",
            "--plan",
            plan_path.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--workdir",
            dir.to_str().unwrap(),
        ],
        env,
        RUN,
    );
    let r = std::fs::read(&report)
        .map(|b| serde_json::from_slice(&b).expect("report json"))
        .unwrap_or_else(|_| panic!("no report\n{}\n{}", out.stdout, out.stderr));
    (out, r)
}

/// The kv-service plan: everything read from the service's own signals.
fn kv_plan(dir: &Path, port: u16, a_pid: u32, haproxy: &Haproxy, b_extra: &str) -> String {
    let log = dir.join("kv.log");
    let a = format!("http://127.0.0.2:{port}");
    let b = format!("http://127.0.0.3:{port}");
    format!(
        r#"[a]
url = "{a}/"
health_url = "{a}/healthz"
address = "127.0.0.2"
stop = "kill -TERM {a_pid}"

[b]
url = "{b}/"
health_url = "{b}/healthz"
address = "127.0.0.3"
start = "echo $$ > {pid_file}; {b_start}"
stop = "kill -TERM {{pid}}"

{switch}
[feeder]
target = "http://{front}/"
rate = 200
run_before_flip = "3s"
run_after_flip = "2s"

[feeder.request]
method = "PUT"
path = "/kv/{{id}}"
body = '{{"value": "v-{{seq}}"}}'
ok_status = [200, 201]
instance_json = "/instance"
content_pointer = "/value"

[converge]
kind = "prometheus"
applied = {{ url = "{b}/metrics", metric = "kv_applied_records" }}
head = {{ url = "{b}/metrics", metric = "kv_log_head" }}
max_lag = 5
stable_for = "500ms"

[drain]
kind = "prometheus"
url = "{a}/metrics"
metric = "kv_requests_total"
labels = {{ route = "/kv/{{key}}" }}
quiet = "1s"

[reconcile]
kind = "http"
url = "{b}/kv"
items_pointer = "/items"
id_pointer = "/key"
digest_pointer = "/value"
next_pointer = "/next"

[host_checks]
enabled = false
"#,
        pid_file = dir.join("b.pid").display(),
        b_start = kv_command("127.0.0.3", port, &log, "b", b_extra),
        switch = haproxy.switch_toml(),
        front = haproxy.front,
    )
}

/// Ends the process whose pid a start command wrote to `file`.
struct PidFile(PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = eventually(Duration::from_secs(10), || {
                nix::sys::signal::kill(pid, None).is_err()
            });
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

struct KvStage {
    /// First: fields drop in order, and B's pid file is in `dir`.
    _b: PidFile,
    dir: tempfile::TempDir,
    port: u16,
    a: Proc,
    haproxy: Haproxy,
}

impl KvStage {
    fn start() -> KvStage {
        let dir = tempfile::tempdir().unwrap();
        let port = migrator::demo::shared_free_port().unwrap();
        let a = start_sh(
            &kv_command("127.0.0.2", port, &dir.path().join("kv.log"), "a", ""),
            "kv a",
            &dir.path().join("a.log"),
        );
        let haproxy = Haproxy::start(dir.path(), port);
        let b = PidFile(dir.path().join("b.pid"));
        KvStage {
            dir,
            port,
            a,
            haproxy,
            _b: b,
        }
    }

    fn plan(&self, b_extra: &str) -> String {
        kv_plan(
            self.dir.path(),
            self.port,
            self.a.pid(),
            &self.haproxy,
            b_extra,
        )
    }
}

#[test]
fn a_kv_store_behind_haproxy_moves_with_nothing_lost() {
    let stage = KvStage::start();
    let (out, r) = migrate(stage.dir.path(), &stage.plan(""), &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(r.passed, "{:?}", r.reasons);
    assert_eq!(stage.haproxy.target(), "127.0.0.3", "HAProxy sends to B");
    let f = r.feeder.as_ref().unwrap();
    assert!(
        f.instances.get("a").is_some_and(|n| *n > 0)
            && f.instances.get("b").is_some_and(|n| *n > 0),
        "both instances answered, named in the reply body: {:?}",
        f.instances
    );
    assert_eq!(f.rejected + f.indeterminate, 0);
    let c = r.convergence.as_ref().unwrap();
    assert!(
        c.measured && c.source.contains("kv_applied_records"),
        "{c:?}"
    );
    let rec = r.reconcile.as_ref().unwrap();
    assert_eq!((rec.lost, rec.unexpected, rec.mismatched), (0, 0, 0));
    assert_eq!(rec.ok, f.ok, "every acknowledged write is listed by B");
    assert_eq!(rec.content_unchecked, 0, "each value checked by digest");
    assert!(rec.source.contains("http"), "{}", rec.source);
    let drain = r.steps.iter().find(|s| s.name == "drain_a").unwrap();
    let detail = drain.detail.as_deref().unwrap_or("");
    assert!(detail.contains("kv_requests_total"), "{detail}");
    // What preflight read is printed.
    assert!(
        out.stdout.contains("read: drain: prometheus"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_kv_store_that_loses_acknowledged_writes_fails_with_their_ids() {
    let stage = KvStage::start();
    let (out, r) = migrate(stage.dir.path(), &stage.plan("--lose-every 40"), &[]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(!r.passed);
    let rec = r.reconcile.as_ref().unwrap();
    assert!(rec.lost > 0, "{rec:?}");
    assert_eq!(rec.ids.lost.len() as u64, rec.lost.min(100));
    assert!(
        r.reasons.iter().any(|x| x.starts_with("lost = ")),
        "{:?}",
        r.reasons
    );
}

#[test]
fn a_kv_plan_naming_a_metric_the_service_lacks_is_refused_before_anything_starts() {
    let stage = KvStage::start();
    let plan = stage.plan("").replace(
        "metric = \"kv_requests_total\"",
        "metric = \"kv_request_total\"",
    );
    let plan_path = stage.dir.path().join("plan.toml");
    std::fs::write(&plan_path, plan).unwrap();
    let out = run_with_env(&["run", "--plan", plan_path.to_str().unwrap()], &[], RUN);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("drain.metric") && out.stderr.contains("kv_request_total"),
        "{}",
        out.stderr
    );
    assert!(!answers(
        format!("127.0.0.3:{}", stage.port).parse().unwrap()
    ));
    assert_eq!(stage.haproxy.target(), "127.0.0.2", "nothing changed");
}

/// pg-orders on `ip:port`.
fn pg_orders_command(ip: &str, port: u16, name: &str, extra: &str) -> String {
    format!(
        "exec {} --listen {ip}:{port} --instance {name} {extra}",
        sibling_bin("pg-orders").display()
    )
}

fn pg_plan(dir: &Path, port: u16, a_pid: u32, edge: &EdgeParts, b_extra: &str) -> String {
    let a = format!("http://127.0.0.2:{port}");
    let b = format!("http://127.0.0.3:{port}");
    format!(
        r#"[a]
url = "{a}/"
health_url = "{a}/status"
address = "127.0.0.2"
stop = "kill -TERM {a_pid}"

[b]
url = "{b}/"
health_url = "{b}/status"
address = "127.0.0.3"
start = "echo $$ > {pid_file}; {b_start}"
stop = "kill -TERM {{pid}}"

[switch]
kind = "cloudflare"
zone = "{zone}"
record = "{record}"
api_base = "http://{api}/client/v4/"

[feeder]
target = "http://{record}:{proxy_port}/"
resolve = {{ "{record}" = "{proxy}" }}
rate = 150
run_before_flip = "3s"
run_after_flip = "2s"

[feeder.request]
method = "POST"
path = "/api/orders"
body = '{{"id": "{{id}}", "item": "item-{{seq}}", "qty": 1}}'
instance_header = "X-Served-By"
content_pointer = "/item"

[converge]
kind = "wait"
for = "1s"

[drain]
kind = "replies"
quiet = "1500ms"

[reconcile]
kind = "sql"
url_env = "ORDERS_DB"
query = "SELECT id, body->>'item' FROM orders WHERE id LIKE {{run}} || '-%'"

[timeouts]
drain = "30s"

[host_checks]
enabled = false
"#,
        pid_file = dir.join("b.pid").display(),
        b_start = pg_orders_command("127.0.0.3", port, "b", b_extra),
        zone = migrator::demo::ZONE,
        record = migrator::demo::RECORD,
        api = edge.api,
        proxy = edge.proxy,
        proxy_port = edge.proxy.port(),
    )
}

struct PgStage {
    /// First: fields drop in order, and B's pid file is in `dir`.
    _b: PidFile,
    dir: tempfile::TempDir,
    port: u16,
    pg: Pg,
    edge: EdgeParts,
    a: Proc,
}

impl PgStage {
    fn start() -> PgStage {
        let dir = tempfile::tempdir().unwrap();
        let port = migrator::demo::shared_free_port().unwrap();
        let pg = Pg::start();
        let edge = start_edge(dir.path(), port, "");
        let mut c = Command::new(sibling_bin("pg-orders"));
        c.args(["--listen", &format!("127.0.0.2:{port}"), "--instance", "a"])
            .env("PG_ORDERS_DATABASE_URL", &pg.url);
        let a = spawn_server(c, "pg-orders a", &dir.path().join("a.log")).0;
        let b = PidFile(dir.path().join("b.pid"));
        PgStage {
            dir,
            port,
            pg,
            edge,
            a,
            _b: b,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CLOUDFLARE_API_TOKEN", self.edge.token.clone()),
            // B's start command inherits it; the reconcile query reads it.
            ("PG_ORDERS_DATABASE_URL", self.pg.url.clone()),
            ("ORDERS_DB", self.pg.url.clone()),
        ]
    }

    fn record(&self) -> String {
        use migrator::switch::TrafficSwitch;
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(cloudflare_switch(self.edge.api, &self.edge.token).current())
            .unwrap()
    }
}

#[test]
fn an_api_in_front_of_postgres_moves_and_is_reconciled_by_sql() {
    let stage = PgStage::start();
    let plan = pg_plan(stage.dir.path(), stage.port, stage.a.pid(), &stage.edge, "");
    let (out, r) = migrate(stage.dir.path(), &plan, &stage.env());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(r.passed, "{:?}", r.reasons);
    assert_eq!(stage.record(), "127.0.0.3");
    let f = r.feeder.as_ref().unwrap();
    assert!(
        f.instances.contains_key("a") && f.instances.contains_key("b"),
        "{:?}",
        f.instances
    );
    let c = r.convergence.as_ref().unwrap();
    assert!(!c.measured, "converge.kind = wait measures nothing: {c:?}");
    let rec = r.reconcile.as_ref().unwrap();
    assert_eq!((rec.lost, rec.unexpected, rec.mismatched), (0, 0, 0));
    assert_eq!(rec.ok, f.ok);
    assert_eq!(rec.content_unchecked, 0);
    let drain = r.steps.iter().find(|s| s.name == "drain_a").unwrap();
    assert!(
        drain
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("replies from a"),
        "{:?}",
        drain.detail
    );
    // The database password never reaches the output or the report.
    let password = url::Url::parse(&stage.pg.url)
        .ok()
        .and_then(|u| u.password().map(str::to_string));
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        let report = std::fs::read_to_string(stage.dir.path().join("report.json")).unwrap();
        for text in [&out.stdout, &out.stderr, &report] {
            assert!(!text.contains(&p), "password leaked");
        }
    }
}

#[test]
fn an_api_that_loses_acknowledged_inserts_fails_with_their_ids() {
    let stage = PgStage::start();
    let plan = pg_plan(
        stage.dir.path(),
        stage.port,
        stage.a.pid(),
        &stage.edge,
        "--lose-every 30",
    );
    let (out, r) = migrate(stage.dir.path(), &plan, &stage.env());
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let rec = r.reconcile.as_ref().unwrap();
    assert!(rec.lost > 0, "{rec:?}");
    assert!(!rec.ids.lost.is_empty());
}

#[test]
fn bad_source_and_request_keys_exit_2_naming_the_key_and_start_nothing() {
    let stage = KvStage::start();
    let good = stage.plan("");
    let cases = [
        (
            good.replace(
                "kind = \"prometheus\"\napplied",
                "kind = \"promethus\"\napplied",
            ),
            "converge",
        ),
        (
            good.replace("path = \"/kv/{id}\"", "path = \"/kv/{key}\""),
            "feeder.request.path",
        ),
        (
            good.replace("id_pointer = \"/key\"", "id_pointer = \"key\""),
            "reconcile.id_pointer",
        ),
        (
            good.replace(
                "instance_json = \"/instance\"",
                "instance_json = \"instance\"",
            ),
            "feeder.request.instance_json",
        ),
        (
            good.replace(
                "body = '{\"value\": \"v-{seq}\"}'",
                "body = '{\"value\": v-{seq}}'",
            ),
            "feeder.request.body",
        ),
        (
            good.replace(
                "labels = { route = \"/kv/{key}\" }",
                "labels = { route = \"/kv/{key}\" }\ncommand = \"true\"",
            ),
            "drain.command",
        ),
        (
            good.replace(
                "[converge]\nkind = \"prometheus\"",
                "[converge]\nkind = \"wait\"",
            ),
            "converge.applied",
        ),
    ];
    for (text, key) in cases {
        let p = stage.dir.path().join("bad.toml");
        std::fs::write(&p, &text).unwrap();
        let out = run_with_env(&["run", "--plan", p.to_str().unwrap()], &[], RUN);
        assert_eq!(out.code, 2, "{key}: {}\n{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(key), "{key}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{key}: {}",
            out.stderr
        );
    }
    assert!(!answers(
        format!("127.0.0.3:{}", stage.port).parse().unwrap()
    ));
    assert_eq!(stage.haproxy.target(), "127.0.0.2", "nothing changed");
}
