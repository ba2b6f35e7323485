//! The request template against a service that is not the example app: a
//! key-value store taking `PUT /kv/{id}` with a JSON body and naming its
//! instance in the reply body. Through the library (both clients) and
//! through the binary's flags.

use super::{opts, read_acks};
use crate::util::{run_reported, serve, Ctx, Reply, TestServer};
use feeder::{ClientKind, RequestTemplate, Workload};
use handover_contract::order::content_digest;
use handover_contract::{AckRecord, Outcome};
use std::collections::{BTreeMap, HashMap};

const BODY: &str = r#"{"key":"{id}","value":{"seq":{seq},"run":"{run}"}}"#;

/// What the store answers for the write of slot `seq`: the status and the
/// instance its body names (`None`: a body that is not JSON).
fn verdict(seq: u64) -> (u16, Option<&'static str>) {
    let status = match seq % 5 {
        0 => 200, // not in ok_status: indeterminate
        1 => 409, // another 4xx: rejected
        2 => 503, // 5xx: indeterminate
        3 => 201,
        _ => 202,
    };
    let instance = match seq % 3 {
        0 => Some("a"),
        1 => Some("7"), // answered as a JSON number
        _ => None,
    };
    (status, instance)
}

fn seq_of(path: &str) -> Option<u64> {
    path.rsplit('-').next()?.parse().ok()
}

/// The store: status and body by the slot in the path, no instance header.
async fn kv_store() -> TestServer {
    serve(|c: &Ctx| {
        let seq = seq_of(&c.path).unwrap_or(0);
        let (status, _) = verdict(seq);
        let body = match seq % 3 {
            0 => r#"{"instance":"a","stored":true}"#,
            1 => r#"{"instance":7,"stored":true}"#,
            _ => "stored, not JSON",
        };
        Reply {
            status,
            instance: None,
            delay: std::time::Duration::ZERO,
            body: body.into(),
        }
    })
    .await
}

fn kv_template() -> RequestTemplate {
    RequestTemplate {
        method: "PUT".into(),
        path: "/kv/{id}".into(),
        headers: BTreeMap::from([("X-Request".into(), "{run}/{seq}".into())]),
        body: Some(BODY.into()),
        ok_status: Some(vec![201, 202]),
        instance_header: None,
        instance_json: Some("/instance".into()),
        content_pointer: Some("/value".into()),
    }
}

/// Every ack line is a request the store received with that id, its outcome
/// the ok_status rule's, its instance read from the body, its digest the
/// content digest of the value sent at `/value`; and every request the
/// store received has its ack line.
fn assert_acked_as_sent(server: &TestServer, acks: &[AckRecord], run: &str) {
    let arrived = server.seen.requests.lock().unwrap().clone();
    let mut by_id = HashMap::new();
    for a in &arrived {
        assert_eq!(a.method, "PUT", "{a:?}");
        let id = a
            .target
            .strip_prefix("/kv/")
            .unwrap_or_else(|| panic!("{a:?}"));
        assert_eq!(
            a.headers["content-type"], "application/json",
            "the default content type"
        );
        let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(body["key"], id, "{body}");
        let seq = seq_of(id).unwrap();
        assert_eq!(a.headers["x-request"], format!("{run}/{seq}"));
        assert!(by_id.insert(id.to_string(), body).is_none(), "{id} twice");
    }
    assert_eq!(acks.len(), arrived.len());
    let mut outcomes = HashMap::new();
    for ack in acks {
        let body = by_id
            .get(&ack.id)
            .unwrap_or_else(|| panic!("{} acked but never received", ack.id));
        let seq = seq_of(&ack.id).unwrap();
        assert_eq!(ack.id, format!("{run}-{seq:010}"));
        let (status, instance) = verdict(seq);
        assert_eq!(ack.status, Some(status), "{ack:?}");
        let outcome = match status {
            201 | 202 => Outcome::Ok,
            409 => Outcome::Rejected,
            _ => Outcome::Indeterminate,
        };
        assert_eq!(ack.outcome, outcome, "{ack:?}");
        *outcomes.entry(outcome).or_insert(0u64) += 1;
        assert_eq!(ack.instance.as_deref(), instance, "{ack:?}");
        let digest = format!("{:016x}", content_digest(&body["value"]));
        assert_eq!(
            ack.items_digest.as_deref(),
            Some(digest.as_str()),
            "{ack:?}"
        );
        assert_eq!(ack.user_id, None);
    }
    for o in [Outcome::Ok, Outcome::Rejected, Outcome::Indeterminate] {
        assert!(outcomes.get(&o).copied().unwrap_or(0) > 0, "{outcomes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kv_store_gets_every_id_as_sent_with_outcomes_instances_and_digests() {
    for client in [ClientKind::Http1, ClientKind::Reqwest] {
        let server = kv_store().await;
        let dir = tempfile::tempdir().unwrap();
        let acks_path = dir.path().join("acks.jsonl");
        let mut o = opts(&server.url(), 200.0, 1_500);
        o.client = client;
        o.run_id = "kv1".into();
        o.ack_log = Some(acks_path.clone());
        o.workload = Workload::Template(kv_template());
        let report = feeder::start(o).await.unwrap().finish().await.unwrap();
        let acks = read_acks(&acks_path);
        assert_eq!(acks.len() as u64, report.sent, "{client:?}");
        assert!(report.sent >= 250, "{report:#?}");
        assert!(report.ok > 0 && report.rejected > 0 && report.indeterminate > 0);
        assert_acked_as_sent(&server, &acks, "kv1");
        assert!(report.instances.contains_key("a") && report.instances.contains_key("7"));
    }
}

/// The same store driven by the binary's flags, as `feeder.mode =
/// "external"` would: every value from the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_drives_the_kv_store_from_flags() {
    let server = kv_store().await;
    let dir = tempfile::tempdir().unwrap();
    let acks_path = dir.path().join("acks.jsonl");
    let url = server.url();
    let (_, report) = run_reported(&[
        &url,
        "150",
        "--duration",
        "1s",
        "--progress",
        "off",
        "--run-id",
        "kv2",
        "--ack-log",
        acks_path.to_str().unwrap(),
        "--method",
        "PUT",
        "--path",
        "/kv/{id}",
        "--header",
        "X-Request: {run}/{seq}",
        "--body",
        BODY,
        "--ok-status",
        "201,202",
        "--instance-json",
        "/instance",
        "--content-pointer",
        "/value",
        // The store refuses some writes on purpose.
        "--allow-failures",
    ])
    .await;
    let acks = read_acks(&acks_path);
    assert_eq!(acks.len() as u64, report.sent);
    assert_acked_as_sent(&server, &acks, "kv2");
}

/// A template without a body is the example-app order, users from the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_without_a_body_places_orders_on_its_path() {
    let server = serve(|c: &Ctx| match c.path.as_str() {
        "/users" => Reply::ok("a").status(200).body(r#"[{"id":"u-7"}]"#),
        _ => Reply::ok("a"),
    })
    .await;
    let mut o = opts(&server.url(), 50.0, 500);
    o.workload = Workload::Template(RequestTemplate {
        path: "/v2/orders".into(),
        ..RequestTemplate::default()
    });
    let report = feeder::start(o).await.unwrap().finish().await.unwrap();
    assert!(report.sent > 0 && report.ok == report.sent, "{report:#?}");
    let orders = server.seen.orders.lock().unwrap().clone();
    assert_eq!(orders.len() as u64, report.sent);
    assert!(orders.values().all(|r| r.user_id == "u-7"));
    let paths = server.seen.paths.lock().unwrap().clone();
    assert_eq!(paths[0], "/users");
    assert!(paths[1..].iter().all(|p| p == "/v2/orders"), "{paths:?}");
}

/// A bad template is refused before anything is sent.
#[tokio::test]
async fn a_bad_template_sends_nothing() {
    let server = serve(|_| Reply::ok("a")).await;
    let mut o = opts(&server.url(), 50.0, 500);
    o.workload = Workload::Template(RequestTemplate {
        body: Some(r#"{"key":{id}}"#.into()),
        ..kv_template()
    });
    let Err(e) = feeder::start(o).await else {
        panic!("started")
    };
    assert!(e.is_usage(), "{e}");
    assert!(e.to_string().contains("feeder.request.body"), "{e}");
    assert_eq!(server.count(), 0);
}
