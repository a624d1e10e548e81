//! The model of the definitions that the Rust, TypeScript and docs
//! generators share: what it makes of maps, `optional`, oneofs, payloads,
//! nested types and comments, and how it dates elements across versions.

use courier_codegen::model::{Cardinality, Model, Scalar, Value};

fn model_of(files: &[(&str, &str)]) -> Model {
    // One directory per call: tests run in parallel.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("courier-model-{}-{n}", std::process::id()));
    let mut paths = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let (fds, _) = courier_codegen::load(&paths, &[&dir]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    Model::new(&fds).unwrap()
}

const ROOM: &str = r#"syntax = "proto3";
package m.v1;
import "courier/v2/channels.proto";

// A room.
//
// Second paragraph.
message Room {
  message Member { string id = 1; }
  enum Kind { KIND_UNSPECIFIED = 0; KIND_PUBLIC = 1; }
  map<string, Member> members = 1;
  optional uint64 limit = 2;
  // What happened last.
  oneof last {
    Member joined = 3;
    bytes payload = 4;
  }
  repeated bytes info = 5;
  bytes payload_too = 6 [deprecated = true];
  Kind kind = 7;
  courier.v2.StreamPosition position = 8;
}
"#;

#[test]
fn fields_carry_value_cardinality_and_oneof() {
    let model = model_of(&[("m/v1/room.proto", ROOM)]);
    let file = model.files_of("m.v1").next().unwrap();
    let room = &file.messages[0];
    assert_eq!(room.full_name(), "m.v1.Room");
    assert_eq!(room.doc, "A room.\n\nSecond paragraph.");
    // The map entry is no message of its own.
    let nested: Vec<&str> = room.messages.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(nested, ["Member"]);
    let f = |name: &str| room.fields.iter().find(|f| f.name == name).unwrap();
    assert_eq!(f("members").card, Cardinality::Map(Scalar::String));
    let Value::Message(member) = &f("members").value else {
        panic!("a map of messages")
    };
    assert_eq!(member.nested_name("."), "Room.Member");
    // `optional`'s synthetic oneof is not a oneof.
    assert_eq!(f("limit").card, Cardinality::Optional);
    assert_eq!(f("limit").oneof, None);
    assert_eq!(room.oneofs.len(), 1);
    assert_eq!(room.oneofs[0].doc, "What happened last.");
    let members: Vec<&str> = room.members(0).map(|f| f.name.as_str()).collect();
    assert_eq!(members, ["joined", "payload"]);
    // ENC-PAYLOAD: singular `payload`/`info` only; a list of them is bytes.
    assert_eq!(f("payload").value, Value::Payload);
    assert_eq!(f("info").value, Value::Scalar(Scalar::Bytes));
    assert_eq!(f("info").card, Cardinality::Repeated);
    assert_eq!(f("payload_too").value, Value::Scalar(Scalar::Bytes));
    assert!(f("payload_too").deprecated);
    let Value::Enum(kind) = &f("kind").value else {
        panic!("an enum")
    };
    assert_eq!(model.enumeration(kind).unwrap().zero(), "KIND_UNSPECIFIED");
    let Value::Message(position) = &f("position").value else {
        panic!("a message")
    };
    assert_eq!(position.scope.package, "courier.v2");
    assert!(model.packages.iter().any(|p| p == "courier.v2"));
}

#[test]
fn elements_are_dated_by_the_oldest_version_that_has_them() {
    let v1 = "syntax = \"proto3\";\npackage d.v1;\nmessage A { string x = 1; }\nenum E { E_ZERO = 0; }\n";
    let v2 = "syntax = \"proto3\";\npackage d.v2;\nmessage A { string x = 1; string y = 2; }\nmessage B {}\nenum E { E_ZERO = 0; E_ONE = 1; }\n";
    let mut old = model_of(&[("d/v1/d.proto", v1)]);
    old.date(1, None);
    let mut new = model_of(&[("d/v2/d.proto", v2)]);
    new.date(2, Some(&old));
    let file = &new.files[0];
    let (a, b) = (&file.messages[0], &file.messages[1]);
    assert_eq!((a.since, a.fields[0].since, a.fields[1].since), (1, 1, 2));
    assert_eq!(b.since, 2);
    let e = &file.enums[0];
    assert_eq!((e.since, e.values[0].since, e.values[1].since), (1, 1, 2));
}

#[test]
fn groups_are_refused_with_the_field_named() {
    let dir = std::env::temp_dir().join(format!("courier-model-g-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("g.proto");
    std::fs::write(
        &path,
        "syntax = \"proto2\";\npackage g.v1;\nmessage M { optional group Item = 1 { optional int32 x = 2; } }\n",
    )
    .unwrap();
    let (fds, _) = courier_codegen::load(&[&path], &[&dir]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let err = Model::new(&fds).unwrap_err();
    assert_eq!(
        (err.file.as_str(), err.item.as_str()),
        ("g.proto", "g.v1.M.item")
    );
    assert!(err.what.contains("group"), "{err}");
}
