//! The TypeScript generator: the checked-in bindings are fresh, and the
//! output for a user's payload proto is pinned by insta snapshots.

use std::path::{Path, PathBuf};

use courier_codegen::ts::{header, TsConfig, TsError};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

const NO_PATHS: &[&str] = &[];

/// The generated files under `bindings/typescript/src/gen/` must equal what
/// the generator produces now (the same call `cargo xtask codegen` makes).
#[test]
fn checked_in_bindings_are_fresh() {
    let files = TsConfig::new()
        .runtime_import("../runtime/index.js")
        .generated_by("cargo xtask codegen")
        .generate(NO_PATHS, NO_PATHS)
        .unwrap();
    let dir = root().join("bindings/typescript/src/gen");
    let mut stale = Vec::new();
    for f in &files {
        let current = std::fs::read_to_string(dir.join(&f.path)).ok();
        if current.as_deref() != Some(f.content.as_str()) {
            stale.push(f.path.clone());
        }
    }
    // A file the generator no longer writes is stale too.
    let mut on_disk = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                on_disk.push(
                    p.strip_prefix(&dir)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    for p in on_disk {
        if !files.iter().any(|f| f.path == p) {
            stale.push(p);
        }
    }
    assert!(
        stale.is_empty(),
        "stale: run `cargo xtask codegen` ({})",
        stale.join(", ")
    );
}

#[test]
fn every_file_has_the_header_and_relative_runtime_import() {
    let files = TsConfig::new()
        .runtime_import("../runtime/index.js")
        .generate(NO_PATHS, NO_PATHS)
        .unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "courier/v2/types.ts",
            "courier/v2/wire.ts",
            "courier/v2/proto.ts"
        ]
    );
    for f in &files {
        assert!(
            f.content
                .starts_with(&format!("{}\n", header("courier gen ts"))),
            "{} lacks the default header",
            f.path
        );
        assert!(
            f.content.contains("\"../../../runtime/index.js\""),
            "{}: runtime import not rebased",
            f.path
        );
    }
}

#[test]
fn version_1_has_no_version_2_messages() {
    let files = TsConfig::new()
        .courier_version(1)
        .generate(NO_PATHS, NO_PATHS)
        .unwrap();
    let types = &files
        .iter()
        .find(|f| f.path == "courier/v1/types.ts")
        .unwrap()
        .content;
    assert!(types.contains("| ({ readonly type: \"hello\" } & Hello)"));
    assert!(!types.contains("\"batch\""), "v1 must not know batch");
    assert!(
        !types.contains("reauth_request")
            && !types.contains("retry_after_ms")
            && !types.contains("max_batch")
    );
    let v2 = TsConfig::new().generate(NO_PATHS, NO_PATHS).unwrap();
    let types2 = &v2
        .iter()
        .find(|f| f.path == "courier/v2/types.ts")
        .unwrap()
        .content;
    assert!(types2.contains("| ({ readonly type: \"batch\" } & Batch)"));
}

#[test]
fn unknown_version_is_an_error() {
    let err = TsConfig::new()
        .courier_version(3)
        .generate(NO_PATHS, NO_PATHS)
        .unwrap_err();
    assert!(
        matches!(
            err,
            TsError::Codegen(courier_codegen::Error::UnknownVersion(3))
        ),
        "{err}"
    );
}

#[test]
fn user_payload_proto_snapshot() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ts_fixtures");
    let files = TsConfig::new()
        .generate(&[fixtures.join("chat.proto")], &[&fixtures])
        .unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "courier/v2/types.ts",
            "courier/v2/wire.ts",
            "courier/v2/proto.ts",
            "chat/v1/types.ts",
            "chat/v1/wire.ts",
            "chat/v1/proto.ts"
        ]
    );
    for f in files.iter().filter(|f| f.path.starts_with("chat/")) {
        insta::assert_snapshot!(f.path.replace('/', "_"), f.content);
    }
}

#[test]
fn unsupported_constructs_name_the_field() {
    let dir = std::env::temp_dir().join(format!("courier-ts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("m.proto"),
        "syntax = \"proto2\";\npackage m.v1;\nmessage M { optional group Item = 1 { optional int32 x = 2; } }\n",
    )
    .unwrap();
    let err = TsConfig::new()
        .generate(&[dir.join("m.proto")], &[&dir])
        .unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        matches!(&err, TsError::Unsupported { item, what } if item == "m.v1.M.item" && what.contains("group")),
        "{err}"
    );
}

#[test]
fn oneof_type_moves_aside_for_a_nested_type_of_its_name() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ts_fixtures");
    let files = TsConfig::new()
        .generate(&[fixtures.join("chat.proto")], &[&fixtures])
        .unwrap();
    let types = &files
        .iter()
        .find(|f| f.path == "chat/v1/types.ts")
        .unwrap()
        .content;
    assert!(types.contains("export interface ChatMessage_Reaction {"));
    assert!(types.contains("export type ChatMessage_ReactionOneof ="));
    assert!(types.contains("  reaction?: ChatMessage_ReactionOneof;"));
    assert!(types.contains("export type ChatMessage_Body ="));
}

#[test]
fn generated_by_names_the_command_in_every_header() {
    let files = TsConfig::new()
        .generated_by("npm run gen")
        .generate(NO_PATHS, NO_PATHS)
        .unwrap();
    for f in &files {
        assert_eq!(
            f.content.lines().next(),
            Some("// generated by `npm run gen`, do not edit"),
            "{}",
            f.path
        );
    }
}
