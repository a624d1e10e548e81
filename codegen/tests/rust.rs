//! The Rust generator on user payload protos written to a temporary
//! directory: what it writes, where, with which policy attributes, and the
//! typed errors it returns for inputs it cannot compile. (That the output
//! compiles and round-trips is proven by `examples/chat`.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use courier_codegen::{Config, Error};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "courier-codegen-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const COMMON: &str = r#"syntax = "proto3";
package demo.common.v1;
// A user id.
message UserRef { string id = 1; }
enum Color { COLOR_UNSPECIFIED = 0; COLOR_RED = 1; }
"#;

const DEMO: &str = r#"syntax = "proto3";
package demo.v1;
import "demo/common/v1/common.proto";
import "courier/v2/channels.proto";

message Outer {
  message Middle {
    message Inner { uint64 at_ms = 1; }
    enum Level { LEVEL_UNSPECIFIED = 0; LEVEL_HIGH = 1; }
    Inner inner = 1;
    Level level = 2;
  }
  Middle middle = 1;
  demo.common.v1.UserRef user = 2;
  repeated demo.common.v1.Color colors = 3;
  optional demo.common.v1.Color favourite = 4;
  map<uint32, Middle.Level> levels = 5;
  map<string, string> labels = 6;
  oneof choice {
    string text = 7;
    Middle.Inner inner = 8;
    demo.common.v1.Color color = 9;
    int64 delta = 10;
  }
  courier.v2.StreamPosition position = 11;
  string fooBar = 12;
  bool self = 13;
  bytes blob = 14;
}
"#;

fn compile_demo(tmp: &TempDir) -> String {
    tmp.write("proto/demo/common/v1/common.proto", COMMON);
    tmp.write("proto/demo/v1/demo.proto", DEMO);
    let out = tmp.0.join("out");
    std::fs::create_dir_all(&out).unwrap();
    Config::new()
        .out_dir(&out)
        .rerun_if_changed(false)
        .compile(
            &[tmp.0.join("proto/demo/v1/demo.proto")],
            &[tmp.0.join("proto")],
        )
        .unwrap();
    std::fs::read_to_string(out.join("demo.v1.rs")).unwrap()
}

#[test]
fn writes_one_file_per_user_package_and_none_for_courier() {
    let tmp = TempDir::new();
    compile_demo(&tmp);
    let mut files: Vec<String> = std::fs::read_dir(tmp.0.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // The imported user package is generated too (with the policy); the
    // imported Courier package is not: it is `courier_protocol::v2`.
    assert_eq!(files, ["demo.common.v1.rs", "demo.v1.rs"]);
    let common = std::fs::read_to_string(tmp.0.join("out/demo.common.v1.rs")).unwrap();
    assert!(
        common.contains("impl ::courier_protocol::wire::ProtoEnum for Color"),
        "{common}"
    );
    assert!(
        common.contains("::courier_protocol::wire::serde::Serialize"),
        "{common}"
    );
}

#[test]
fn generated_code_goes_through_courier_protocol_only() {
    let tmp = TempDir::new();
    let code = compile_demo(&tmp);
    // Users depend on courier-protocol alone: prost, serde and schemars are
    // reached through its `wire` module.
    assert!(code.contains(r#"#[prost(prost_path = "::courier_protocol::wire::prost")]"#));
    assert!(code.contains(r#"#[serde(crate = "::courier_protocol::wire::serde", default)]"#));
    assert!(code.contains("use ::courier_protocol::wire::serde;"));
    for line in code.lines() {
        let t = line.trim_start();
        assert!(
            !t.contains("::prost::") || t.contains("courier_protocol"),
            "direct prost path: {line}"
        );
    }
    // Imported Courier types resolve to the courier-protocol crate.
    assert!(
        code.contains("::core::option::Option<::courier_protocol::v2::StreamPosition>"),
        "{code}"
    );
    // Imported user types resolve relative to the package module.
    assert!(
        code.contains("::core::option::Option<super::common::v1::UserRef>"),
        "{code}"
    );
}

#[test]
fn fields_carry_the_encoding_policy() {
    let tmp = TempDir::new();
    let code = compile_demo(&tmp);
    let rt = "::courier_protocol::wire";
    for needle in [
        // Enums by name, from another package and nested.
        format!("{rt}::enum_list_ser::<super::common::v1::Color, _>"),
        format!("{rt}::opt_enum_de::<super::common::v1::Color, _>"),
        format!("{rt}::enum_de::<middle::Level, _>"),
        // 53-bit integers, also three levels down.
        format!("deserialize_with = \"{rt}::u53\""),
        // Maps through `wire::maps`, with the key type in the schema.
        format!("{rt}::maps::serialize::<{rt}::maps::Enum<outer::middle::Level>, _, _>"),
        format!(
            "{rt}::maps::schema::<{rt}::maps::Plain<::std::string::String>, ::std::string::String>"
        ),
        // Bytes as base64.
        format!("with = \"{rt}::base64\""),
        // The forward-compatible oneof reader.
        format!("deserialize_with = \"{rt}::oneof::deserialize::<outer::Choice, _>\""),
        // Null as default for plain fields.
        format!("deserialize_with = \"{rt}::nulls::or_default\""),
        // Proto names kept where prost renames.
        "#[serde(rename = \"fooBar\")]".to_string(),
        "#[serde(rename = \"self\")]".to_string(),
    ] {
        assert!(code.contains(&needle), "missing `{needle}` in:\n{code}");
    }
}

#[test]
fn every_message_gets_validate_and_oneofs_their_names() {
    let tmp = TempDir::new();
    let code = compile_demo(&tmp);
    for ty in ["Outer", "outer::Middle", "outer::middle::Inner"] {
        assert!(
            code.contains(&format!(
                "impl ::courier_protocol::wire::Validate for {ty} {{"
            )),
            "{ty}: {code}"
        );
    }
    assert!(
        code.contains("impl ::courier_protocol::wire::ProtoEnum for outer::middle::Level"),
        "{code}"
    );
    assert!(code.contains(
        r#"const NAMES: &'static [&'static str] = &["text", "inner", "color", "delta"];"#
    ));
    // The oneof's 64-bit member and message member are validated.
    assert!(code.contains(
        "outer::Choice::Delta(v)) => { ::courier_protocol::wire::check_i53(*v, \"delta\")? }"
    ));
    assert!(code.contains(
        "outer::Choice::Inner(v)) => { ::courier_protocol::wire::Validate::validate(v)? }"
    ));
    // Map entries are not messages of their own.
    assert!(!code.contains("Validate for outer::LevelsEntry"), "{code}");
}

#[test]
fn load_reports_every_file_system_input_for_rerun_if_changed() {
    let tmp = TempDir::new();
    tmp.write("proto/demo/common/v1/common.proto", COMMON);
    let demo = tmp.write("proto/demo/v1/demo.proto", DEMO);
    let (fds, inputs) = courier_codegen::load(&[&demo], &[tmp.0.join("proto")]).unwrap();
    let inputs: Vec<PathBuf> = inputs.iter().map(|p| p.canonicalize().unwrap()).collect();
    for rel in [
        "proto/demo/v1/demo.proto",
        "proto/demo/common/v1/common.proto",
    ] {
        let want = tmp.0.join(rel).canonicalize().unwrap();
        assert!(inputs.contains(&want), "{want:?} not in {inputs:?}");
    }
    // Embedded Courier files are part of the build, not files to watch.
    assert_eq!(inputs.len(), 2, "{inputs:?}");
    assert!(fds
        .file
        .iter()
        .any(|f| f.name() == "courier/v2/channels.proto"));
}

#[test]
fn missing_file_is_a_proto_error_naming_it() {
    let tmp = TempDir::new();
    let err = Config::new()
        .out_dir(&tmp.0)
        .rerun_if_changed(false)
        .compile(&["does/not/exist.proto"], &[&tmp.0])
        .unwrap_err();
    assert!(matches!(err, Error::Proto(_)), "{err:?}");
    assert!(err.to_string().contains("does/not/exist.proto"), "{err}");
}

#[test]
fn missing_import_is_a_proto_error_naming_it() {
    let tmp = TempDir::new();
    let file = tmp.write(
        "p/a/v1/a.proto",
        "syntax = \"proto3\";\npackage a.v1;\nimport \"b/v1/gone.proto\";\n",
    );
    let err = Config::new()
        .out_dir(&tmp.0)
        .rerun_if_changed(false)
        .compile(&[file], &[tmp.0.join("p")])
        .unwrap_err();
    assert!(matches!(err, Error::Proto(_)), "{err:?}");
    assert!(err.to_string().contains("b/v1/gone.proto"), "{err}");
}

#[test]
fn syntax_error_is_a_proto_error() {
    let tmp = TempDir::new();
    let file = tmp.write(
        "p/a/v1/a.proto",
        "syntax = \"proto3\";\npackage a.v1;\nmessage {\n",
    );
    let err = Config::new()
        .out_dir(&tmp.0)
        .rerun_if_changed(false)
        .compile(&[file], &[tmp.0.join("p")])
        .unwrap_err();
    assert!(matches!(err, Error::Proto(_)), "{err:?}");
}

#[test]
fn unknown_version_is_refused_before_reading_anything() {
    let err = Config::new()
        .courier_version(3)
        .compile(&["nothing.proto"], &["."])
        .unwrap_err();
    assert!(matches!(err, Error::UnknownVersion(3)), "{err:?}");
    assert!(matches!(
        courier_codegen::courier_descriptors(0),
        Err(Error::UnknownVersion(0))
    ));
    assert_eq!(
        courier_codegen::courier_descriptors(1).unwrap().file.len(),
        5
    );
}

#[test]
fn importing_another_courier_version_is_a_version_mismatch() {
    let tmp = TempDir::new();
    let file = tmp.write(
        "p/a/v1/a.proto",
        "syntax = \"proto3\";\npackage a.v1;\nimport \"courier/v2/channels.proto\";\nmessage A { courier.v2.StreamPosition p = 1; }\n",
    );
    let err = Config::new()
        .courier_version(1)
        .out_dir(&tmp.0)
        .rerun_if_changed(false)
        .compile(&[&file], &[tmp.0.join("p")])
        .unwrap_err();
    assert!(
        matches!(&err, Error::VersionMismatch { file, imported: 2, configured: 1 } if file == "a/v1/a.proto"),
        "{err:?}"
    );
    // The same file compiles for version 2.
    Config::new()
        .out_dir(&tmp.0)
        .rerun_if_changed(false)
        .compile(&[&file], &[tmp.0.join("p")])
        .unwrap();
    assert!(tmp.0.join("a.v1.rs").exists());
}

#[test]
fn well_known_types_and_missing_packages_are_unsupported() {
    let tmp = TempDir::new();
    let wkt = tmp.write(
        "p/a/v1/a.proto",
        "syntax = \"proto3\";\npackage a.v1;\nimport \"google/protobuf/timestamp.proto\";\nmessage A { google.protobuf.Timestamp at = 1; }\n",
    );
    let err = Config::new()
        .out_dir(&tmp.0)
        .rerun_if_changed(false)
        .compile(&[wkt], &[tmp.0.join("p")])
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { file, .. } if file == "google/protobuf/timestamp.proto"),
        "{err:?}"
    );
    let bare = tmp.write(
        "p/bare.proto",
        "syntax = \"proto3\";\nmessage A { string s = 1; }\n",
    );
    let err = Config::new()
        .out_dir(&tmp.0)
        .rerun_if_changed(false)
        .compile(&[bare], &[tmp.0.join("p")])
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { file, reason } if file == "bare.proto" && reason.contains("package"))
    );
}

#[test]
fn output_is_deterministic() {
    let a = TempDir::new();
    let b = TempDir::new();
    assert_eq!(compile_demo(&a), compile_demo(&b));
}
