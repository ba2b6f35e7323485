//! `migrator demo --fleet N --holdover H`: a fleet on one machine, nothing
//! installed. Hosts are example-app instances on 127.0.1.x, hold-overs on
//! 127.0.2.x (all on one port, as on real hosts), each host with its own
//! SQLite store and its own record on the local edge; each run drives load
//! on its host's record. `maintain` stands in for a reboot (a pause and a
//! mark on the emptied host), `verify` checks the mark; `--fail-host NAME`
//! makes that host's verify fail always, so the rollback path shows.
//! The fleet plan is written as DIR/fleet.toml — the file a user writes —
//! and loaded through the same parser as `migrator fleet --plan`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use handover_cli::Style;

use super::{bind_metrics, exit_code, FleetOptions, FleetPlan};
use crate::demo::processes::{self, random_token, wait_healthy};
use crate::demo::{bin_dir, edge_toml, DemoArgs, DemoError, ZONE};
use crate::faults::api::EdgeAdmin;
use crate::faults::Targets;
use crate::plan::shell_word;
use crate::process::{Reaper, Started};
use crate::switch::cloudflare::Token;

/// Host `i`'s address (0-based).
fn host_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, (i + 1) as u8)
}

fn holdover_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 2, (i + 1) as u8)
}

/// What the demo's fleet plan is made of.
pub struct Stage<'a> {
    pub hosts: usize,
    pub holdovers: usize,
    pub port: u16,
    pub api: SocketAddr,
    pub proxy: SocketAddr,
    pub app: &'a Path,
    pub workdir: &'a Path,
    pub fail_host: Option<&'a str>,
    pub rate: f64,
    pub duration: Duration,
    pub propagation: Duration,
    pub idle_timeout: Duration,
}

/// The demo's fleet plan as TOML text.
pub fn fleet_toml(s: &Stage<'_>) -> String {
    let q = |v: &str| toml::Value::String(v.to_string()).to_string();
    let ms = |d: Duration| q(&format!("{}ms", d.as_millis()));
    let dir = |file: &str| shell_word(&s.workdir.join(file).to_string_lossy());
    let hosts: Vec<String> = (0..s.hosts)
        .map(|i| format!("{{ address = \"{}\", name = \"h{}\" }}", host_ip(i), i + 1))
        .collect();
    let holdovers: Vec<String> = (0..s.holdovers)
        .map(|i| format!("\"{}\"", holdover_ip(i)))
        .collect();
    let pid = dir("{name}-{address}.pid");
    let start = format!(
        "echo $$ > {pid}; exec {} --listen {{address}}:{} --store sqlite:{} --instance-id {{name}}-{{address}}",
        shell_word(&s.app.to_string_lossy()),
        s.port,
        dir("{name}.db"),
    );
    let mark = dir("{name}.maintained");
    let verify = match s.fail_host {
        Some(bad) => format!("test {{name}} != {} && test -s {mark}", shell_word(bad)),
        None => format!("test -s {mark}"),
    };
    let quiet = Duration::from_secs(1);
    format!(
        r#"# The demo's fleet: example-app hosts and hold-overs on loopback.
[fleet]
hosts = [{hosts}]
holdover = [{holdovers}]
batch = {batch}
jitter = "300ms"
retries = 3
verify_timeout = "10s"
retry_delay = "200ms"
maintain_timeout = "10s"
# Every host's record probed all fleet long: was the service ever down?
watch = {{ path = "/companies", rate = 10 }}

[fleet.host]
url = "http://{{address}}:{port}/"
start = {start}
stop = {stop}
maintain = {maintain}
verify = {verify}

[switch]
kind = "cloudflare"
zone = "{ZONE}"
record = "{{name}}.{ZONE}"
api_base = "http://{api}/client/v4/"

[feeder]
target = "http://{{name}}.{ZONE}:{proxy_port}/"
rate = {rate}
run_before_flip = {before}
run_after_flip = {after}

[feeder.resolve]
"{{name}}.{ZONE}" = "{proxy}"

[drain]
quiet = {quiet}

[timeouts]
drain = {drain}
"#,
        hosts = hosts.join(", "),
        holdovers = holdovers.join(", "),
        batch = s.holdovers,
        port = s.port,
        start = q(&start),
        stop = q(&format!("kill -TERM $(cat {pid})")),
        maintain = q(&format!("sleep 0.2 && date > {mark}")),
        verify = q(&verify),
        api = s.api,
        proxy_port = s.proxy.port(),
        proxy = s.proxy,
        rate = s.rate,
        before = ms(s.duration / 2),
        after = ms(s.duration / 4),
        quiet = ms(quiet),
        drain = ms(s.propagation + s.idle_timeout + quiet + Duration::from_secs(8)),
    )
}

/// Extra records for the edge: one per host, pointing at it.
fn records(hosts: usize) -> String {
    (0..hosts)
        .map(|i| {
            format!(
                "\n[[zones.records]]\nname = \"h{}.{ZONE}\"\ntype = \"A\"\ncontent = \"{}\"\nproxied = true\nttl = 1\n",
                i + 1,
                host_ip(i)
            )
        })
        .collect()
}

/// A port free on every host and hold-over address.
fn free_port(addrs: &[Ipv4Addr]) -> Result<u16, DemoError> {
    let first = addrs.first().copied().unwrap_or(Ipv4Addr::LOCALHOST);
    for _ in 0..100 {
        let l = TcpListener::bind((first, 0)).map_err(|e| {
            DemoError::Setup(format!("cannot bind {first}: {e} (is 127.0.0.0/8 on lo?)"))
        })?;
        let port = l
            .local_addr()
            .map_err(|e| DemoError::Setup(e.to_string()))?
            .port();
        let held: Result<Vec<_>, _> = addrs[1..]
            .iter()
            .map(|a| TcpListener::bind((*a, port)))
            .collect();
        if held.is_ok() {
            return Ok(port);
        }
    }
    Err(DemoError::Setup(
        "no port free on every fleet address".into(),
    ))
}

/// Checks the fleet flags and the plan they make; nothing is started.
fn check(args: &DemoArgs, hosts: usize, bins: &Path) -> Result<FleetPlan, DemoError> {
    let setup = |m: String| Err(DemoError::Setup(m));
    if !(1..=200).contains(&hosts) {
        return setup(format!("--fleet must be 1 to 200 hosts, got {hosts}"));
    }
    if !(1..=50).contains(&args.holdover) {
        return setup(format!("--holdover must be 1 to 50, got {}", args.holdover));
    }
    if let Some(bad) = &args.fail_host {
        if !(1..=hosts).any(|i| format!("h{i}") == *bad) {
            return setup(format!("--fail-host {bad:?}: the hosts are h1 to h{hosts}"));
        }
    }
    if !args.faults.is_empty() || args.store.is_some() || args.plot.is_some() {
        return setup(
            "--fault, --store and --plot are for the single-run demo, not --fleet".into(),
        );
    }
    let here = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
    let text = fleet_toml(&stage(
        args,
        hosts,
        1,
        here,
        here,
        &bins.join("example-app"),
        bins,
    ));
    parse(&text, &args.set)
}

fn stage<'a>(
    args: &'a DemoArgs,
    hosts: usize,
    port: u16,
    api: SocketAddr,
    proxy: SocketAddr,
    app: &'a Path,
    workdir: &'a Path,
) -> Stage<'a> {
    Stage {
        hosts,
        holdovers: args.holdover,
        port,
        api,
        proxy,
        app,
        workdir,
        fail_host: args.fail_host.as_deref(),
        rate: args.rate,
        duration: args.duration,
        propagation: args.propagation,
        idle_timeout: args.idle_timeout,
    }
}

/// The fleet plan `text` with `--set` applied, checked; nothing written.
fn parse(text: &str, set: &[(String, String)]) -> Result<FleetPlan, DemoError> {
    let bad = |e: crate::plan::PlanError| DemoError::Setup(format!("demo fleet plan: {e}"));
    let mut doc = text
        .parse::<toml::Table>()
        .map_err(|e| DemoError::Setup(format!("demo fleet plan: {e}")))?;
    for (k, v) in set {
        crate::plan::set_key(&mut doc, k, v).map_err(bad)?;
    }
    FleetPlan::from_table(doc).map_err(bad)
}

/// Runs the fleet demo; the exit code.
pub async fn run(args: &DemoArgs, hosts: usize) -> Result<i32, DemoError> {
    let bins = bin_dir(args.bin_dir.as_deref())?;
    check(args, hosts, &bins)?;
    let metrics = bind_metrics(args.metrics, false)
        .await
        .map_err(|e| DemoError::Setup(e.to_string()))?;
    let (workdir, _temp) = match &args.workdir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| DemoError::Setup(format!("cannot create {}: {e}", d.display())))?;
            let empty = std::fs::read_dir(d)
                .map(|mut r| r.next().is_none())
                .unwrap_or(false);
            if !empty {
                return Err(DemoError::Setup(format!(
                    "--workdir {}: a fleet demo needs an empty directory (stores and edge state start fresh)",
                    d.display()
                )));
            }
            (std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()), None)
        }
        None => {
            let (path, t) = processes::temp_workdir("handover-fleet-")?;
            (path, Some(t))
        }
    };
    let reaper = Reaper::owning();
    let cancel = crate::interrupt::token(Some(reaper.clone()));
    let result = stage_and_run(args, hosts, &bins, &workdir, &reaper, cancel, metrics).await;
    reaper.reap(Duration::from_secs(10));
    if args.workdir.is_some() {
        println!(
            "workdir: {} (fleet.toml, fleet.json, per-run reports and ack logs, logs)",
            workdir.display()
        );
    }
    result
}

async fn stage_and_run(
    args: &DemoArgs,
    hosts: usize,
    bins: &Path,
    workdir: &Path,
    reaper: &Reaper,
    cancel: tokio_util::sync::CancellationToken,
    metrics: Option<tokio::net::TcpListener>,
) -> Result<i32, DemoError> {
    let addrs: Vec<Ipv4Addr> = (0..hosts)
        .map(host_ip)
        .chain((0..args.holdover).map(holdover_ip))
        .collect();
    let port = free_port(&addrs)?;
    let (token, admin_token) = (random_token(), random_token());
    let edge_cfg = workdir.join("edge.toml");
    let cfg = edge_toml(
        port,
        args.propagation,
        args.idle_timeout,
        &workdir.join("edge-state.json"),
    );
    std::fs::write(&edge_cfg, cfg + &records(hosts))
        .map_err(|e| DemoError::Setup(format!("cannot write {}: {e}", edge_cfg.display())))?;
    let (_edge, edge) =
        processes::spawn_edge(bins, &edge_cfg, (&token, &admin_token), workdir, reaper).await?;

    let app = bins.join("example-app");
    let text = fleet_toml(&stage(
        args, hosts, port, edge.api, edge.proxy, &app, workdir,
    ));
    // Written for people to read and rerun; the fleet runs what it parses to.
    let path = workdir.join("fleet.toml");
    std::fs::write(&path, &text)
        .map_err(|e| DemoError::Setup(format!("cannot write {}: {e}", path.display())))?;
    let plan = parse(&text, &args.set)?;
    // Every host serves its service before the fleet starts.
    let mut started = Vec::new();
    for h in &plan.fleet.hosts {
        let cmd = crate::plan::fill(
            &plan.host.start,
            &[
                ("name", &h.name()),
                ("address", h.address()),
                ("host", h.address()),
            ],
        );
        let log = workdir.join(format!("{}.log", h.name()));
        started.push(
            Started::spawn(&cmd, &log, Some(reaper))
                .map_err(|e| DemoError::Stage(e.to_string()))?,
        );
    }
    for h in &plan.fleet.hosts {
        let url = url::Url::parse(&format!("http://{}:{port}/", h.address()))
            .map_err(|e| DemoError::Stage(e.to_string()))?;
        wait_healthy(&url, Duration::from_secs(30)).await?;
    }
    println!(
        "demo: fleet of {hosts} hosts (127.0.1.x) and {} hold-overs (127.0.2.x) on port {port}, edge api {} proxy {}",
        args.holdover, edge.api, edge.proxy
    );
    let admin = url::Url::parse(&format!("http://{}/", edge.api))
        .map_err(|e| DemoError::Stage(e.to_string()))?;
    let report = super::run(FleetOptions {
        plan,
        dry_run: false,
        report: Some(
            args.report
                .clone()
                .unwrap_or_else(|| workdir.join("fleet.json")),
        ),
        workdir: workdir.to_path_buf(),
        seed: args.seed,
        metrics,
        style: Style::stdout(),
        reaper: reaper.clone(),
        cancel,
        token: Some(Token::new(token)),
        targets: Targets {
            edge_admin: Some(EdgeAdmin::new(admin, admin_token)),
        },
    })
    .await
    .map_err(|e| DemoError::Setup(e.to_string()))?;
    drop(started);
    Ok(exit_code(report.as_ref()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_plan_is_a_valid_fleet_plan() {
        let here = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        let dir = Path::new("/tmp/fleet demo");
        let text = fleet_toml(&Stage {
            hosts: 3,
            holdovers: 2,
            port: 18080,
            api: here,
            proxy: here,
            app: Path::new("/bin/example-app"),
            workdir: dir,
            fail_host: Some("h2"),
            rate: 20.0,
            duration: Duration::from_secs(2),
            propagation: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(200),
        });
        let plan = FleetPlan::from_table(text.parse().unwrap()).unwrap();
        assert_eq!(plan.fleet.hosts.len(), 3);
        assert_eq!(plan.fleet.batch, 2);
        let h2 = &plan.fleet.hosts[1];
        assert_eq!(
            plan.verify(h2, "127.0.2.1"),
            "test h2 != h2 && test -s '/tmp/fleet demo/h2.maintained'"
        );
        let out = plan
            .run_plan(h2, "127.0.2.1", super::super::plan::Leg::Out, dir)
            .unwrap();
        assert!(out
            .b
            .start
            .unwrap()
            .contains("--listen 127.0.2.1:18080 --store sqlite:'/tmp/fleet demo/h2.db'"));
        assert_eq!(
            out.feeder.resolve.keys().next().unwrap(),
            "h2.handover.test"
        );
    }
}
