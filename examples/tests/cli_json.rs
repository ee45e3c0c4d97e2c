//! `--format json`, end to end: each command's document, from the example
//! binaries run as child processes, is parsed and validated against the
//! documented schema, docs/cli-json.schema.json (with a validator of the
//! part of JSON Schema that file uses, below, itself tested to reject what
//! breaks the schema).

use std::path::Path;

use migrate_core::rusqlite::Connection;
use serde_json::Value;
use tempfile::TempDir;

mod common;
use common::run;

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cli-json.schema.json");
    let text = std::fs::read_to_string(&path).expect("the schema file");
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// Every way `value` breaks `rule` (a JSON Schema, resolved against
/// `root`), with where. Handles what the schema file uses: `type`, `enum`,
/// `const`, `minimum`, `maximum`, `properties`, `required`,
/// `additionalProperties: false`, `items`, `oneOf`, `$ref`; any other
/// keyword fails, so that the file cannot outgrow the check silently.
fn violations(root: &Value, rule: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Some(rule) = rule.as_object() else {
        return vec![format!("{at}: the schema's rule is not an object")];
    };
    for (keyword, expected) in rule {
        match keyword.as_str() {
            "$schema"
            | "$id"
            | "title"
            | "description"
            | "$defs"
            | "additionalProperties"
            | "required" => {}
            "$ref" => {
                let name = expected
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .expect("refs point into $defs");
                let target = &root["$defs"][name];
                assert!(!target.is_null(), "no $defs/{name}");
                found.extend(violations(root, target, value, at));
            }
            "type" => {
                let types: Vec<&str> = match expected {
                    Value::String(one) => vec![one.as_str()],
                    Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                    _ => panic!("type: {expected}"),
                };
                let ok = types.iter().any(|t| match *t {
                    "null" => value.is_null(),
                    "boolean" => value.is_boolean(),
                    "integer" => value.is_u64() || value.is_i64(),
                    "number" => value.is_number(),
                    "string" => value.is_string(),
                    "array" => value.is_array(),
                    "object" => value.is_object(),
                    other => panic!("type {other}"),
                });
                if !ok {
                    found.push(format!("{at}: {value} is not of type {expected}"));
                }
            }
            "enum" => {
                if !expected.as_array().expect("enum").contains(value) {
                    found.push(format!("{at}: {value} is not one of {expected}"));
                }
            }
            "const" => {
                if value != expected {
                    found.push(format!("{at}: {value} is not {expected}"));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(v), Some(bound)) = (value.as_f64(), expected.as_f64()) {
                    let ok = if keyword == "minimum" {
                        v >= bound
                    } else {
                        v <= bound
                    };
                    if !ok {
                        found.push(format!("{at}: {v} breaks {keyword} {bound}"));
                    }
                }
            }
            "properties" => {
                let Some(object) = value.as_object() else {
                    continue;
                };
                let properties = expected.as_object().expect("properties");
                for required in rule
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = required.as_str().expect("required names");
                    if !object.contains_key(name) {
                        found.push(format!("{at}: `{name}` is missing"));
                    }
                }
                for (name, item) in object {
                    match properties.get(name) {
                        Some(property) => {
                            found.extend(violations(root, property, item, &format!("{at}.{name}")))
                        }
                        None if rule.get("additionalProperties") == Some(&Value::Bool(false)) => {
                            found.push(format!("{at}: `{name}` is not in the schema"))
                        }
                        None => {}
                    }
                }
            }
            "items" => {
                for (index, item) in value.as_array().into_iter().flatten().enumerate() {
                    found.extend(violations(root, expected, item, &format!("{at}[{index}]")));
                }
            }
            "oneOf" => {
                let matching = expected
                    .as_array()
                    .expect("oneOf")
                    .iter()
                    .filter(|option| violations(root, option, value, at).is_empty())
                    .count();
                if matching != 1 {
                    found.push(format!(
                        "{at}: {value} matches {matching} of the oneOf options, not exactly one"
                    ));
                }
            }
            other => panic!("the schema uses `{other}`, which this check does not know"),
        }
    }
    found
}

/// Parses `out` as one JSON document and checks it against the schema:
/// its `$defs` entry `def`, and the top-level `oneOf`.
fn validated(out: &str, def: &str) -> Value {
    assert!(
        out.ends_with('\n') && out.lines().count() == 1,
        "one line: {out:?}"
    );
    let doc: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let root = schema();
    let problems = violations(&root, &root["$defs"][def], &doc, def);
    assert!(problems.is_empty(), "{out}\n{problems:#?}");
    let problems = violations(&root, &root, &doc, "document");
    assert!(problems.is_empty(), "{out}\n{problems:#?}");
    doc
}

#[test]
fn the_validator_rejects_what_breaks_the_schema() {
    let root = schema();
    let good = serde_json::json!({
        "command": "down", "set": "", "table": "migrations", "elapsed_ms": 1.5,
        "steps": [{"id": 2, "name": "b", "direction": "down", "elapsed_ms": 0.25}]
    });
    assert!(violations(&root, &root["$defs"]["down"], &good, "d").is_empty());
    assert!(violations(&root, &root, &good, "d").is_empty());
    let mut breaks = Vec::new();
    for (pointer, bad) in [
        ("/command", serde_json::json!("up")),
        ("/steps/0/direction", serde_json::json!("sideways")),
        ("/steps/0/id", serde_json::json!(-1)),
        ("/steps/0/id", serde_json::json!("2")),
        ("/elapsed_ms", serde_json::json!(null)),
        ("/set", serde_json::json!(1)),
    ] {
        let mut doc = good.clone();
        *doc.pointer_mut(pointer).expect("pointer") = bad.clone();
        let found = violations(&root, &root["$defs"]["down"], &doc, "d");
        assert!(!found.is_empty(), "{pointer} = {bad} passed");
        breaks.extend(found);
    }
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("table");
    assert_eq!(
        violations(&root, &root["$defs"]["down"], &missing, "d"),
        vec!["d: `table` is missing"]
    );
    let mut extra = good.clone();
    extra["surprise"] = serde_json::json!(true);
    assert_eq!(
        violations(&root, &root["$defs"]["down"], &extra, "d"),
        vec!["d: `surprise` is not in the schema"]
    );
    assert!(!violations(&root, &root, &extra, "d").is_empty());
}

#[test]
fn status_plan_up_down_verify_and_dry_run_documents_follow_the_schema() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");

    let status = run("quickstart", &db, &["status", "--format", "json"]);
    assert_eq!(status.code, 0, "{}", status.err);
    let doc = validated(&status.out, "status");
    assert_eq!(doc["pending"], 3);
    assert_eq!(doc["migrations"][0]["state"], "pending");
    assert_eq!(doc["migrations"][0]["applied_at"], Value::Null);

    let plan = run("quickstart", &db, &["plan", "--format", "json"]);
    assert_eq!(plan.code, 0, "{}", plan.err);
    let doc = validated(&plan.out, "plan");
    assert_eq!(doc["pending"][1]["name"], "create_dogs");
    assert_eq!(doc["pending"][1]["has_rollback"], true);
    assert!(
        doc["pending"][0]["location"]
            .as_str()
            .is_some_and(|l| l.starts_with("examples/quickstart.rs:")),
        "{doc}"
    );

    let dry = run("quickstart", &db, &["dry-run", "--format", "json"]);
    assert_eq!(dry.code, 0, "{}", dry.err);
    let doc = validated(&dry.out, "dry-run");
    assert_eq!(doc["steps"].as_array().map(Vec::len), Some(3));
    assert_eq!(doc["failure"], Value::Null);

    let backup = dir.path().join("before.db");
    let up = run(
        "quickstart",
        &db,
        &[
            "up",
            "--to",
            "1",
            "--format",
            "json",
            "--backup",
            backup.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(up.code, 0, "{}", up.err);
    let doc = validated(&up.out, "up");
    assert_eq!(doc["set"], "");
    assert_eq!(doc["table"], "migrations");
    assert_eq!(doc["steps"][1]["name"], "create_dogs");
    assert_eq!(doc["steps"][1]["direction"], "up");
    assert_eq!(doc["backup"]["path"], backup.to_str().expect("utf-8"));

    let status = run("quickstart", &db, &["status", "--format", "json"]);
    let doc = validated(&status.out, "status");
    assert_eq!(
        (doc["applied"].clone(), doc["pending"].clone()),
        (2.into(), 1.into())
    );
    assert_eq!(doc["migrations"][1]["state"], "applied");
    assert!(doc["migrations"][1]["applied_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    let up = run("quickstart", &db, &["up", "--format", "json"]);
    let doc = validated(&up.out, "up");
    assert_eq!(doc["backup"], Value::Null);
    assert_eq!(doc["steps"][0]["id"], 2);
    let nothing = run("quickstart", &db, &["up", "--format", "json"]);
    assert_eq!(
        validated(&nothing.out, "up")["steps"],
        serde_json::json!([])
    );

    let verify = run("quickstart", &db, &["verify", "--format", "json"]);
    assert_eq!(verify.code, 0, "{}", verify.out);
    let doc = validated(&verify.out, "verify");
    assert_eq!(doc["ok"], true);

    let down = run("quickstart", &db, &["down", "--format", "json"]);
    assert_eq!(down.code, 0, "{}", down.err);
    let doc = validated(&down.out, "down");
    assert_eq!(doc["steps"][0]["id"], 2);
    assert_eq!(doc["steps"][0]["direction"], "down");

    // A history row changed by hand: verify's problems, exit 3.
    Connection::open(&db)
        .and_then(|c| {
            c.execute_batch(
                "UPDATE migrations SET checksum = '00000000000000000000000000000000' WHERE id = 1",
            )
        })
        .expect("tamper");
    let verify = run("quickstart", &db, &["verify", "--format", "json"]);
    assert_eq!(verify.code, 3, "{}", verify.out);
    let doc = validated(&verify.out, "verify");
    assert_eq!(doc["ok"], false);
    assert!(
        doc["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("migration 1 `create_dogs`")),
        "{doc}"
    );
    let status = run("quickstart", &db, &["status", "--format", "json"]);
    assert_eq!(status.code, 0, "{}", status.err);
    let doc = validated(&status.out, "status");
    let dogs = &doc["migrations"][1];
    assert_eq!(dogs["state"], "modified");
    assert_eq!(dogs["applied_name"], "create_dogs");
    assert_eq!(dogs["applied_checksum"], "00000000000000000000000000000000");
}

#[test]
fn failures_are_an_error_document_with_the_same_exit_codes() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);

    // A refusal of the CLI's own.
    let down = run("quickstart", &db, &["down", "--all", "--format", "json"]);
    assert_eq!(down.code, 1);
    let doc = validated(&down.out, "error");
    assert_eq!(doc["command"], "down");
    assert_eq!(doc["kind"], "no_rollback");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("nothing was rolled back")),
        "{doc}"
    );
    assert!(
        doc["hint"]
            .as_str()
            .is_some_and(|h| h.contains("#[rollback(0)]")),
        "{doc}"
    );
    assert_eq!(doc["steps"], serde_json::json!([]));
    assert!(
        down.err.contains("error: nothing was rolled back"),
        "stderr keeps the message"
    );

    // A library error: an unknown target.
    let up = run("quickstart", &db, &["up", "--to", "9", "--format", "json"]);
    assert_eq!(up.code, 1);
    assert_eq!(validated(&up.out, "error")["kind"], "invalid_target");

    // The registry refused: a message of several lines and quotes.
    let merged = run(
        "merge",
        &dir.path().join("m.db"),
        &["status", "--format", "json"],
    );
    assert_eq!(merged.code, 1);
    let doc = validated(&merged.out, "error");
    assert_eq!(doc["kind"], "invalid_registry");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("\n  - set \"merge\": migration id 2 is used 2 times")),
        "{doc}"
    );
    assert!(doc.get("steps").is_none(), "steps only for up and down");

    // A migration that fails: exit 1 for up (with the steps done before
    // it), exit 4 and a failure for dry-run.
    let blog = dir.path().join("blog.db");
    Connection::open(&blog)
        .and_then(|c| {
            c.execute_batch(
                "CREATE TABLE migrations_blog ( -- migrate-core tracking table
                    id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL,
                    checksum TEXT NOT NULL, chain TEXT NOT NULL);
                 CREATE TABLE posts (x);",
            )
        })
        .expect("setup");
    let dry = run("blog", &blog, &["dry-run", "--format", "json"]);
    assert_eq!(dry.code, 4, "{}", dry.out);
    let doc = validated(&dry.out, "dry-run");
    assert_eq!(doc["failure"]["kind"], "failed");
    assert!(
        doc["failure"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("table posts already exists")),
        "{doc}"
    );
    let up = run("blog", &blog, &["up", "--format", "json"]);
    assert_eq!(up.code, 1);
    let doc = validated(&up.out, "error");
    assert_eq!(
        (doc["command"].as_str(), doc["kind"].as_str()),
        (Some("up"), Some("failed"))
    );
    assert_eq!(doc["steps"], serde_json::json!([]));
}

#[test]
fn json_and_lint_do_not_mix() {
    let dir = TempDir::new().expect("tempdir");
    let usage = run(
        "quickstart",
        &dir.path().join("q.db"),
        &["plan", "--lint", "--format", "json"],
    );
    assert_eq!(usage.code, 2, "a usage error: {}", usage.err);
}

/// A COMMIT another connection's lock holds back: the steps ran, were
/// reported, and were lost with the transaction. The error document must
/// not list them as done (before: `up` listed steps 1 and 2, which `status`
/// then showed pending; `down` listed rollbacks that were not kept).
#[test]
fn steps_lost_with_their_commit_are_not_listed_as_done() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    let applied = || {
        let status = run("quickstart", &db, &["status", "--format", "json"]);
        let doc = validated(&status.out, "status");
        doc["migrations"]
            .as_array()
            .expect("migrations")
            .iter()
            .filter(|m| m["state"] == "applied")
            .count()
    };
    // A reader in rollback-journal mode holds SHARED: a COMMIT needs it gone.
    let locked_commit = |args: &[&str]| {
        let reader = Connection::open(&db).expect("open");
        reader
            .execute_batch("BEGIN; SELECT * FROM migrations;")
            .expect("read");
        let result = run("quickstart", &db, args);
        reader.execute_batch("COMMIT").expect("end the read");
        assert_eq!(result.code, 1, "{args:?}: {}", result.out);
        let doc = validated(&result.out, "error");
        assert_eq!(doc["kind"], "locked", "{args:?}: {doc}");
        assert_eq!(doc["steps"], serde_json::json!([]), "{args:?}: {doc}");
    };
    assert_eq!(run("quickstart", &db, &["up", "--to", "0"]).code, 0);
    locked_commit(&["--lock-timeout", "1", "up", "--format", "json"]);
    assert_eq!(applied(), 1);
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    assert_eq!(applied(), 3);
    locked_commit(&[
        "--lock-timeout",
        "1",
        "down",
        "--to",
        "0",
        "--format",
        "json",
    ]);
    assert_eq!(applied(), 3);
}

/// `down` of the newest migration reports its step's time, as `up` and
/// `down --to` do (round 16: `elapsed_ms` was 0 for a step of 500 ms).
#[test]
fn a_single_step_down_reports_its_time() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    let down = run("quickstart", &db, &["down", "--format", "json"]);
    assert_eq!(down.code, 0, "{}", down.err);
    let doc = validated(&down.out, "down");
    let steps = doc["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "{doc}");
    let elapsed = steps[0]["elapsed_ms"].as_f64().expect("elapsed_ms");
    assert!(elapsed > 0.0, "{doc}");
}
