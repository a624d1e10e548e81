//! `courier compat` as CI uses it: Courier's own v1 -> v2 definitions must
//! be compatible (ENC-V2-SUPERSET) and v2 -> v1 is not; the fixture pair in
//! tests/compat/ makes one change of each kind and each must be reported
//! with its line and exactly the encodings it breaks; `--git-ref` compares
//! a committed version with the working tree; unreadable input exits 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn courier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(args)
        .output()
        .expect("courier runs")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat")
}

fn show(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn courier_v1_to_v2_is_compatible_and_the_reverse_is_not() {
    let (v1, v2) = (
        root().join("proto/courier/v1"),
        root().join("proto/courier/v2"),
    );
    let out = courier(&["compat", v1.to_str().unwrap(), v2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        show(&out).contains("compatible: no breaking change in 2"),
        "{}",
        show(&out)
    );

    let out = courier(&[
        "compat",
        "--json",
        v2.to_str().unwrap(),
        v1.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let subjects: Vec<&str> = report["breaking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    // What v2 added is what v1 lacks (ENC-V1-ISOLATION lists them).
    for s in [
        "Envelope.batch",
        "ReauthRequest",
        "Error.retry_after_ms",
        "Limits.max_batch",
    ] {
        assert!(subjects.contains(&s), "{s} missing from {subjects:?}");
    }
}

/// `(subject, encodings)` of every finding.
fn findings(report: &Value) -> Vec<(String, Vec<String>, String, u64)> {
    report["breaking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["subject"].as_str().unwrap().to_string(),
                f["breaks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap().to_string())
                    .collect(),
                f["file"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

const ALL: &[&str] = &["json", "msgpack", "protobuf"];
const NAMED: &[&str] = &["json", "msgpack"];
const PROTO: &[&str] = &["protobuf"];

/// Every change in the fixture pair, with the encodings it breaks and the
/// line (in the new file, or the old one for removals).
const EXPECTED: &[(&str, &[&str], &str, u64)] = &[
    ("shop.v1.Order.quantity", ALL, "new", 10), // int32 -> int64: ranges differ
    ("shop.v1.Order.note", NAMED, "new", 11),   // renamed, number kept
    ("shop.v1.Order.status", PROTO, "new", 12), // renumbered, name kept
    ("shop.v1.Order.labels", ALL, "new", 13),   // map key int32 -> string
    ("shop.v1.Order.coupon", ALL, "new", 14),   // made repeated
    ("shop.v1.Order.voucher", ALL, "new", 18),  // moved out of a two-member oneof
    ("shop.v1.Order.total", PROTO, "new", 20),  // int64 -> sint64: zigzag on the wire
    ("shop.v1.Order.blob", NAMED, "new", 21),   // bytes -> string: base64/bin vs text
    ("shop.v1.Order.old_field", ALL, "old", 24), // removed, nothing reserved
    ("shop.v1.Order.extra", PROTO, "new", 23),  // reuses a reserved number
    ("shop.v1.Order.secret", NAMED, "new", 24), // reuses a reserved name
    ("shop.v1.Order.billing", NAMED, "new", 26), // its type's `street` renamed
    ("shop.v1.Removed", ALL, "old", 39),
    ("shop.v1.Status.STATUS_OPEN", NAMED, "new", 33), // enum value renamed
    ("shop.v1.Status.STATUS_CLOSED", PROTO, "new", 34), // its number reused
    ("shop.v1.Status.STATUS_LOST", PROTO, "new", 34), // renumbered
];

fn check_fixture_report(report: &Value, old_file: &str, new_file: &str) {
    let got = findings(report);
    assert_eq!(got.len(), EXPECTED.len(), "{got:#?}");
    for (subject, breaks, side, line) in EXPECTED {
        let file = if *side == "new" { new_file } else { old_file };
        assert!(
            got.iter()
                .any(|(s, b, f, l)| s == subject && b == breaks && f.ends_with(file) && l == line),
            "{subject} {breaks:?} at {file}:{line} not reported; got {got:#?}"
        );
    }
    // Removing `legacy` while reserving its number and name is fine,
    // unchanged fields (`id`, `gift`, an imported Courier type) are silent,
    // and so is a type replaced by one of the same shape (`shipping`).
    assert!(!got.iter().any(|(s, ..)| s.ends_with(".legacy")
        || s.ends_with(".shipping")
        || s.ends_with(".id")
        || s.ends_with(".gift")
        || s.ends_with(".position")));
}

#[test]
fn each_kind_of_change_is_reported_with_line_and_encodings() {
    let (old, new) = (fixtures().join("old"), fixtures().join("new"));
    let out = courier(&[
        "compat",
        "--json",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    check_fixture_report(&report, "old/shop/v1/shop.proto", "new/shop/v1/shop.proto");

    // Text output: one line per change, then the counts.
    let out = courier(&["compat", old.to_str().unwrap(), new.to_str().unwrap()]);
    let text = show(&out);
    assert!(
        text.contains(
            "new/shop/v1/shop.proto:11: shop.v1.Order.note: field renamed `note` -> `comment`"
        ) && text.contains("[breaks json, msgpack]"),
        "{text}"
    );
    assert!(
        text.contains("16 breaking changes (json: 11, msgpack: 11, protobuf: 11)"),
        "{text}"
    );

    // A version compared with itself is compatible.
    let out = courier(&["compat", new.to_str().unwrap(), new.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

#[test]
fn git_ref_compares_the_committed_version_with_the_working_tree() {
    let repo = std::env::temp_dir().join(format!("courier-compat-git-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&repo);
    let proto = repo.join("api/proto/shop/v1");
    std::fs::create_dir_all(&proto).unwrap();
    let copy = |side: &str| {
        std::fs::copy(
            fixtures().join(side).join("shop/v1/shop.proto"),
            proto.join("shop.proto"),
        )
        .unwrap();
    };
    copy("old");
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "v1"]);
    copy("new");
    let dir = repo.join("api/proto");
    let out = courier(&[
        "compat",
        "--json",
        "--git-ref",
        "HEAD",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    check_fixture_report(
        &report,
        "HEAD:api/proto/shop/v1/shop.proto",
        "api/proto/shop/v1/shop.proto",
    );
    // Committed: nothing changed.
    git(&repo, &["commit", "-qam", "v2"]);
    let out = courier(&["compat", "--git-ref", "HEAD", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // A ref that does not exist.
    let out = courier(&["compat", "--git-ref", "no-such-ref", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let _ = std::fs::remove_dir_all(&repo);
}

#[test]
fn unreadable_definitions_exit_two() {
    let dir = std::env::temp_dir().join(format!("courier-compat-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.proto"), "syntax = \"proto3\";\nmessage {\n").unwrap();
    let good = fixtures().join("new");
    let out = courier(&["compat", good.to_str().unwrap(), dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        show(&out).contains("bad.proto:2: expected an identifier"),
        "{}",
        show(&out)
    );
    let out = courier(&["compat", good.to_str().unwrap(), "/nonexistent/dir"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
