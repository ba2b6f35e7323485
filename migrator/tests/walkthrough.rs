//! The two-droplet walkthrough, rehearsed (issue 12): `scripts/walkthrough.sh`
//! gives the store, A, B, the edge and the client their own network
//! namespaces, runs sshd on the store, A and B with throwaway keys,
//! provisions them with `scripts/provision/` over ssh, and runs the
//! walkthrough's own `docs/two-droplets.toml` (addresses substituted):
//! four preflight refusals (an ssh target that does not answer, a changed
//! host key, a token without DNS:Edit, a record that is not proxied), each
//! exit 2 with nothing changed and no secret printed; then A → B and back.
//! Needs root, iproute2, openssh-server and PostgreSQL (`scripts/test.sh`
//! installs them).

mod common;

use common::netns::run_script;

#[test]
fn the_walkthrough_plan_migrates_over_ssh_and_back_losing_nothing() {
    let Some(run) = run_script("walkthrough.sh", &["--rate", "100"], "WALKTHROUGH_REPORT") else {
        return;
    };
    let out = &run.output;
    assert!(run.ok, "walkthrough.sh failed:\n{out}");
    for refusal in [
        "refused: ssh-unreachable",
        "refused: host-key-changed",
        "refused: token-read-only",
        "refused: not-proxied",
    ] {
        assert!(out.contains(refusal), "{refusal} was not rehearsed:\n{out}");
    }
    assert!(
        out.contains("clock offset") && out.contains("somaxconn"),
        "preflight printed the host checks of A and B:\n{out}"
    );
    let r = &run.report;
    assert_eq!(r["passed"], true, "{r}");
    let rec = &r["reconcile"];
    assert_eq!(
        (&rec["lost"], &rec["unexpected"], &rec["duplicated"]),
        (&0.into(), &0.into(), &0.into()),
        "{r}"
    );
    assert!(rec["ok"].as_u64().unwrap_or(0) > 0, "{r}");
    let instances = r["feeder"]["instances"].as_object().expect("instances");
    assert!(
        instances.contains_key("a") && instances.contains_key("b"),
        "both droplets answered: {instances:?}"
    );
    assert!(out.contains("A → B and back, both passed"), "{out}");
    // Its sshd processes went with their namespaces; none is left running.
    let left = std::process::Command::new("pgrep")
        .args(["-f", r"walkthrough\.[A-Za-z0-9]+/ssh/sshd-"])
        .output()
        .expect("pgrep");
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "sshd left running"
    );
}
