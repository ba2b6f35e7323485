//! The demo's plan — the same shape a user writes (docs/plan.md) — and the
//! edge's config for it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use url::Url;

use super::{DemoError, A_IP, B_IP, EDGE_ADMIN_TOKEN_ENV, EDGE_TOKEN_ENV, RECORD, ZONE};
use crate::faults::{FaultSpec, Kind};
use crate::plan::{
    CloudflarePlan, ConvergePlan, DrainPlan, FeederMode, FeederPlan, HostChecks, Origin, Plan,
    StorePlan, SwitchPlan, Timeouts, WatchPlan,
};
use crate::report::Budgets;

/// The edge's `edge.toml` for the demo.
pub fn edge_toml(origin_port: u16, propagation: Duration, idle: Duration, state: &Path) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    format!(
        r#"api_listen = "127.0.0.1:0"
proxy_listen = "127.0.0.1:0"
origin_port = {origin_port}
propagation = "{prop}"
idle_timeout = "{idle}"
# A black-holed origin answers 522 after this (the origin-blackhole fault).
connect_timeout = "2s"
state_file = {state}
tokens_env = "{EDGE_TOKEN_ENV}"
admin_token_env = "{EDGE_ADMIN_TOKEN_ENV}"

[[zones]]
name = "{ZONE}"

[[zones.records]]
name = "{RECORD}"
type = "A"
content = "{A_IP}"
proxied = true
ttl = 1
"#,
        prop = ms(propagation),
        idle = ms(idle),
        state = toml::Value::String(state.to_string_lossy().into_owned()),
    )
}

/// What the demo's plan is built from.
pub struct DemoStage<'a> {
    pub rate: f64,
    pub duration: Duration,
    pub port: u16,
    pub api: SocketAddr,
    pub proxy: SocketAddr,
    pub app: &'a Path,
    pub store: &'a str,
    pub a_pid: u32,
    pub workdir: &'a Path,
    pub propagation: Duration,
    pub idle_timeout: Duration,
    /// Faults to inject (they go into the plan's `[[faults]]`).
    pub faults: &'a [FaultSpec],
    /// How to stop and start the store when it is not SQLite.
    pub store_stop: Option<&'a str>,
    pub store_start: Option<&'a str>,
}

/// The demo's plan: the same shape a user writes (see docs/plan.md).
pub fn demo_plan(s: DemoStage<'_>) -> Result<Plan, DemoError> {
    let bad = |e: url::ParseError| DemoError::Setup(e.to_string());
    let a_url = Url::parse(&format!("http://{A_IP}:{}/", s.port)).map_err(bad)?;
    let b_url = Url::parse(&format!("http://{B_IP}:{}/", s.port)).map_err(bad)?;
    let target = Url::parse(&format!("http://{RECORD}:{}/", s.proxy.port())).map_err(bad)?;
    let api_base = Url::parse(&format!("http://{}/client/v4/", s.api)).map_err(bad)?;
    // B hurts itself on request only when a fault asks it to.
    let injection = if s.faults.iter().any(|f| matches!(f.kind, Kind::App(_))) {
        " --fault-injection"
    } else {
        ""
    };
    let b_start = format!(
        "exec {} --listen {B_IP}:{} --store {} --instance-id b{injection}",
        crate::plan::shell_word(&s.app.to_string_lossy()),
        s.port,
        crate::plan::shell_word(s.store)
    );
    let quiet = Duration::from_secs(2);
    let plan = Plan {
        a: Origin {
            url: a_url,
            health_url: None,
            address: A_IP.to_string(),
            start: None,
            stop: Some(format!("kill -TERM {}", s.a_pid)),
            kill: Some(format!("kill -KILL {}", s.a_pid)),
            instance: None,
            ssh: None,
        },
        b: Origin {
            url: b_url,
            health_url: None,
            address: B_IP.to_string(),
            start: Some(b_start),
            stop: Some("kill -TERM {pid}".into()),
            kill: None,
            instance: None,
            ssh: None,
        },
        switch: SwitchPlan::Cloudflare(CloudflarePlan {
            zone: ZONE.into(),
            record: RECORD.into(),
            api_base,
        }),
        feeder: FeederPlan {
            mode: FeederMode::InProcess,
            target: Some(target),
            rate: s.rate,
            resolve: [(RECORD.to_string(), s.proxy)].into_iter().collect(),
            ack_log: Some(s.workdir.join("acks.jsonl")),
            run_before_flip: s.duration / 2,
            run_after_flip: s.duration / 4,
            ..FeederPlan::default()
        },
        budgets: Budgets::default(),
        timeouts: Timeouts {
            // Propagation plus the sticky idle timeout plus the quiet window,
            // with room: beyond it, stopping A hands over what is left.
            drain: s.propagation + s.idle_timeout + quiet + Duration::from_secs(8),
            ..Timeouts::default()
        },
        converge: ConvergePlan::default(),
        drain: DrainPlan {
            quiet,
            ..DrainPlan::default()
        },
        watch: WatchPlan::default(),
        host_checks: HostChecks::default(),
        reconcile: Default::default(),
        store: StorePlan {
            url: Some(s.store.to_string()),
            stop: s.store_stop.map(str::to_string),
            start: s.store_start.map(str::to_string),
            ..StorePlan::default()
        },
        ssh: Default::default(),
        faults: s.faults.iter().map(FaultSpec::planned).collect(),
    };
    plan.validate()
        .map_err(|e| DemoError::Setup(format!("demo plan: {e}")))?;
    Ok(plan)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn edge_config_names_the_record_and_no_token() {
        let t = edge_toml(
            8080,
            Duration::from_secs(2),
            Duration::from_secs(3),
            Path::new("/tmp/x/edge-state.json"),
        );
        assert!(t.contains("origin_port = 8080"));
        assert!(t.contains("shop.handover.test"));
        assert!(t.contains("tokens_env"));
        assert!(!t.contains("tokens = "));
        t.parse::<toml::Table>().unwrap();
    }

    #[test]
    fn demo_plan_is_a_valid_plan() {
        let dir = tempfile::tempdir().unwrap();
        let p = demo_plan(DemoStage {
            rate: 200.0,
            duration: Duration::from_secs(20),
            port: 18080,
            api: "127.0.0.1:1".parse().unwrap(),
            proxy: "127.0.0.1:2".parse().unwrap(),
            app: Path::new("/bin/example app"),
            store: "sqlite:/tmp/e.db",
            a_pid: 42,
            workdir: dir.path(),
            propagation: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(3),
            faults: &[],
            store_stop: None,
            store_start: None,
        })
        .unwrap();
        assert_eq!(p.a.stop.as_deref(), Some("kill -TERM 42"));
        assert!(p.b.start.as_deref().unwrap().contains("'/bin/example app'"));
        // What the demo writes as plan.toml reads back as the same plan.
        let again = Plan::from_toml(&p.to_toml()).unwrap();
        assert_eq!(again.to_toml(), p.to_toml());
    }
}
