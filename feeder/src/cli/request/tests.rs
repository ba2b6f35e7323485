//! The template flags: what they build, what overrides what, and every bad
//! value refused naming its flag.

#![allow(clippy::unwrap_used)]

use crate::cli::Opts;
use crate::{Error, RequestTemplate, Workload};
use clap::Parser;
use std::collections::BTreeMap;

fn parse(extra: &[&str]) -> Result<crate::Options, Error> {
    let mut args = vec!["feeder", "http://127.0.0.1:1/", "10"];
    args.extend_from_slice(extra);
    Opts::try_parse_from(&args).unwrap().run.options()
}

fn template(extra: &[&str]) -> RequestTemplate {
    match parse(extra).unwrap().workload {
        Workload::Template(t) => t,
        other => panic!("{other:?}"),
    }
}

/// Refused as a usage error (exit 2) whose message starts with `flag`.
#[track_caller]
fn refused(extra: &[&str], flag: &str, says: &str) -> String {
    let e = parse(extra).unwrap_err();
    assert!(e.is_usage(), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("invalid option: {flag}: ")),
        "{text}"
    );
    assert!(text.contains(says), "{text}");
    text
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn no_template_flag_keeps_the_classic_orders() {
    assert!(matches!(
        parse(&[]).unwrap().workload,
        Workload::Orders { .. }
    ));
    assert_eq!(parse(&[]).unwrap().instance_header, "X-Instance");
}

#[test]
fn flags_build_the_template() {
    let t = template(&[
        "--method",
        "PUT",
        "--path",
        "/kv/{id}",
        "--header",
        "X-Seq: {seq}",
        "--header",
        "Authorization:Bearer t0ken",
        "--body",
        r#"{"key":"{id}","v":"{run}"}"#,
        "--ok-status",
        "201,200",
        "--ok-status",
        "204",
        "--instance-json",
        "/instance",
        "--content-pointer",
        "/v",
    ]);
    assert_eq!(
        t,
        RequestTemplate {
            method: "PUT".into(),
            path: "/kv/{id}".into(),
            headers: BTreeMap::from([
                ("X-Seq".into(), "{seq}".into()),
                ("Authorization".into(), "Bearer t0ken".into()),
            ]),
            body: Some(r#"{"key":"{id}","v":"{run}"}"#.into()),
            ok_status: Some(vec![201, 200, 204]),
            instance_header: None,
            instance_json: Some("/instance".into()),
            content_pointer: Some("/v".into()),
        }
    );
    // One template flag is enough; the rest are the defaults.
    let t = template(&["--path", "/v2/orders"]);
    assert_eq!(t.path, "/v2/orders");
    assert_eq!((t.method.as_str(), &t.body), ("POST", &None));
}

#[test]
fn debug_output_hides_header_secrets() {
    let args = [
        "feeder",
        "http://x/",
        "1",
        "--header",
        "X-Api-Key: t0ken",
        "--header",
        "X-A: shown",
    ];
    let shown = format!("{:?}", Opts::try_parse_from(args).unwrap());
    assert!(!shown.contains("t0ken"), "{shown}");
    assert!(
        shown.contains("X-Api-Key: <redacted>") && shown.contains("X-A: shown"),
        "{shown}"
    );
}

#[test]
fn instance_header_flag_applies_to_the_template() {
    let o = parse(&["--path", "/p", "--instance-header", "X-Node"]).unwrap();
    assert_eq!(o.instance_header, "X-Node");
    let Workload::Template(t) = o.workload else {
        panic!()
    };
    assert_eq!(t.instance_header.as_deref(), Some("X-Node"));
    refused(
        &["--instance-header", "X-Node", "--instance-json", "/i"],
        "--instance-json",
        "not both",
    );
}

#[test]
fn bad_values_name_their_flag() {
    refused(&["--method", "G T"], "--method", "not an HTTP method");
    refused(&["--path", "kv/{id}"], "--path", "must start with '/'");
    refused(
        &["--path", "/kv/{key}"],
        "--path",
        "unknown placeholder {key}",
    );
    refused(
        &["--header", "X-A: {nope}"],
        "--header X-A",
        "unknown placeholder {nope}",
    );
    refused(
        &["--header", "Bad Name: x"],
        "--header Bad Name",
        "not a valid HTTP header name",
    );
    refused(
        &["--header", "Host: x"],
        "--header Host",
        "set by the feeder",
    );
    refused(
        &["--header", "X-A: 1", "--header", "x-a: 2"],
        "--header",
        "given twice",
    );
    refused(
        &["--body", r#"{"k":{id}}"#],
        "--body",
        "not valid JSON once rendered",
    );
    refused(&["--ok-status", "700"], "--ok-status", "not an HTTP status");
    refused(
        &["--instance-json", "instance"],
        "--instance-json",
        "not a JSON pointer",
    );
    refused(
        &["--content-pointer", "/k"],
        "--content-pointer",
        "needs a JSON body",
    );
    refused(
        &["--body", r#"{"k":"{id}"}"#, "--content-pointer", "/v"],
        "--content-pointer",
        "resolves to nothing",
    );
    refused(
        &["--body-file", "/nonexistent/body.json"],
        "--body-file /nonexistent/body.json",
        "No such file",
    );
    let body = file(r#"{"k": {run}}"#);
    let path = body.path().display().to_string();
    refused(
        &["--body-file", &path],
        &format!("--body-file {path}"),
        "not valid JSON",
    );
}

#[test]
fn a_header_without_a_colon_is_refused_without_repeating_it() {
    let text = refused(
        &["--header", "Authorization Bearer t0ken"],
        "--header",
        "Name: value",
    );
    assert!(!text.contains("t0ken"), "{text}");
}

#[test]
fn clap_refuses_what_is_not_a_status_or_conflicts() {
    for args in [
        vec!["--ok-status", "2xx"],
        vec!["--ok-status", "70000"],
        vec!["--probe", "/p", "--path", "/q"],
        vec!["--user", "u-1", "--method", "PUT"],
        vec!["--body", "x", "--body-file", "f"],
    ] {
        let mut all = vec!["feeder", "http://x/", "10"];
        all.extend(&args);
        let err = Opts::try_parse_from(&all).expect_err(&args.join(" "));
        assert_eq!(err.exit_code(), handover_contract::exit::USAGE, "{args:?}");
    }
}

#[test]
fn a_request_file_and_flags_over_it() {
    let f = file(
        r#"
        method = "PUT"
        path = "/kv/{id}"
        body = '{"key":"{id}"}'
        [headers]
        x-a = "1"
        "#,
    );
    let path = f.path().to_str().unwrap();
    let t = template(&["--request", path]);
    assert_eq!((t.method.as_str(), t.path.as_str()), ("PUT", "/kv/{id}"));
    let t = template(&["--request", path, "--method", "POST", "--header", "X-A: 2"]);
    assert_eq!(t.method, "POST");
    assert_eq!(t.headers, BTreeMap::from([("X-A".into(), "2".into())]));
}

#[test]
fn a_plan_file_gives_its_feeder_request_table() {
    let f = file(
        r#"
        [a]
        url = "http://a/"
        [feeder]
        rate = 10
        [feeder.request]
        path = "/kv/{id}"
        body = ""
        "#,
    );
    let t = template(&["--request", f.path().to_str().unwrap()]);
    assert_eq!((t.path.as_str(), t.body.as_deref()), ("/kv/{id}", Some("")));
    let f = file("[feeder]\nrate = 10\n");
    let p = f.path().display().to_string();
    refused(
        &["--request", &p],
        &format!("--request {p}"),
        "without a [feeder.request]",
    );
    let f = file("[feeder.request]\npth = \"/x\"\n");
    let p = f.path().display().to_string();
    refused(
        &["--request", &p],
        &format!("--request {p}"),
        "unknown field `pth`",
    );
}

#[test]
fn bad_request_files_are_named_with_the_key() {
    let f = file("path = \"/kv/{key}\"\n");
    let p = f.path().display().to_string();
    let flag = format!("--request {p}");
    refused(
        &["--request", &p],
        &flag,
        "feeder.request.path: unknown placeholder {key}",
    );
    let f = file("method = \"PUT\"\nsecret = \"t0ken\"\n");
    let p = f.path().display().to_string();
    let text = refused(
        &["--request", &p],
        &format!("--request {p}"),
        "line 2 column 1",
    );
    assert!(
        text.contains("unknown field `secret`") && !text.contains("t0ken"),
        "{text}"
    );
    refused(
        &["--request", "/nonexistent.toml"],
        "--request /nonexistent.toml",
        "No such file",
    );
    let f = file("not toml at all [");
    let p = f.path().display().to_string();
    refused(&["--request", &p], &format!("--request {p}"), "line 1");
}
