//! `migrator fleet --dry-run`: the batches with the jitter drawn (and the
//! seed that replays it), then each host's order of operations with every
//! command filled in as the fleet would run it. Nothing is started.

use std::io::Write;
use std::path::Path;

use handover_cli::secs;

use super::plan::{FleetPlan, Leg};
use super::schedule::{jitter, Scheduler};
use crate::plan::{Plan, SwitchPlan};
use crate::redact::passwords;

/// Writes the dry run of `plan` with `seed`.
pub fn print(
    plan: &FleetPlan,
    seed: u64,
    workdir: &Path,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let f = &plan.fleet;
    writeln!(
        out,
        "fleet: {} hosts, {} hold-overs, batches of {}, jitter up to {}, seed {seed} (replay with --seed {seed})",
        f.hosts.len(),
        f.holdover.len(),
        f.batch,
        secs(f.jitter)
    )?;
    writeln!(
        out,
        "verify: up to {} attempts, {} each, {} apart; max_failed_hosts: {}",
        f.retries,
        secs(f.verify_timeout),
        secs(f.retry_delay),
        f.max_failed_hosts
            .map_or("none (never stop)".to_string(), |m| m.to_string())
    )?;
    let batches = Scheduler::planned(f.hosts.len(), f.holdover.len(), f.batch);
    for (n, batch) in batches.iter().enumerate() {
        let when = match n {
            0 => "at once".to_string(),
            n => format!("after batch {n} has ended"),
        };
        writeln!(out, "\nbatch {} ({when})", n + 1)?;
        for &(h, o) in batch {
            let host = &f.hosts[h];
            let holdover = &f.holdover[o];
            writeln!(
                out,
                "  {} ({}) on hold-over {holdover}, starts after {}",
                host.name(),
                host.address(),
                secs(jitter(seed, h, f.jitter))
            )?;
            let run = |leg| plan.run_plan(host, holdover, leg, workdir);
            match (run(Leg::Out), run(Leg::Back)) {
                (Ok(out_run), Ok(back_run)) => {
                    operations(plan, host, holdover, &out_run, &back_run, out)?
                }
                (Err(e), _) | (_, Err(e)) => writeln!(out, "    cannot build its runs: {e}")?,
            }
        }
    }
    writeln!(
        out,
        "\nA hold-over left carrying a rolled-back host is not reused: later batches may then be smaller."
    )?;
    writeln!(out, "dry run: nothing was started or changed.")
}

fn operations(
    plan: &FleetPlan,
    host: &super::plan::HostEntry,
    holdover: &str,
    out_run: &Plan,
    back_run: &Plan,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let run = |n: usize, what: &str, p: &Plan, out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(
            out,
            "    {n}. {what}: migrator run ({} → {}), {}",
            p.a.address,
            p.b.address,
            switch(p)
        )?;
        writeln!(out, "         start B: {}", shown(p.b.start.as_deref()))?;
        writeln!(out, "         stop A:  {}", shown(p.a.stop.as_deref()))?;
        writeln!(
            out,
            "         load: {} orders/s on {}, ack log {}",
            p.feeder.rate,
            p.feeder
                .target
                .as_ref()
                .map_or("-".into(), |t| t.to_string()),
            p.feeder
                .ack_log
                .as_ref()
                .map_or("-".into(), |a| a.display().to_string())
        )
    };
    run(1, "to_holdover", out_run, out)?;
    writeln!(
        out,
        "    2. maintain: {}",
        passwords(&plan.maintain(host, holdover))
    )?;
    writeln!(
        out,
        "    3. verify (up to {} attempts): {}",
        plan.fleet.retries,
        passwords(&plan.verify(host, holdover))
    )?;
    writeln!(
        out,
        "       all failed → rolled back: the service stays on {holdover}, which is not reused"
    )?;
    run(4, "back", back_run, out)?;
    writeln!(out, "    5. release: {holdover} free for the next host")
}

fn shown(cmd: Option<&str>) -> String {
    cmd.map_or("-".into(), passwords)
}

fn switch(p: &Plan) -> String {
    match &p.switch {
        SwitchPlan::Cloudflare(c) => format!("record {} in {}", c.record, c.zone),
        SwitchPlan::Command(c) => format!("flip `{}`", passwords(&c.flip)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_dry_run_shows_batches_jitter_and_every_command() {
        let text = crate::fleet::plan::tests::GOOD;
        let plan = FleetPlan::from_table(text.parse().unwrap()).unwrap();
        let mut out = Vec::new();
        print(&plan, 99, Path::new("/w"), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        for needle in [
            "seed 99 (replay with --seed 99)",
            "batch 1 (at once)",
            "batch 2 (after batch 1 has ended)",
            "10-0-0-13 (10.0.0.13) on hold-over 10.0.0.91",
            "start B: ssh root@10.0.0.91 docker run -d --name shop",
            "stop A:  ssh root@10.0.0.91 docker stop shop",
            "maintain: ssh root@10.0.0.12 reboot",
            "verify (up to 3 attempts): ssh root@10.0.0.13 system-check",
            "record web2.example.com in example.com",
            &format!(
                "starts after {}",
                secs(jitter(99, 2, std::time::Duration::from_secs(30)))
            ),
        ] {
            assert!(out.contains(needle), "{needle:?} missing from\n{out}");
        }
    }
}
