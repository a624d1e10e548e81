//! The Courier protocol definitions, embedded so a user's `build.rs` can
//! `import "courier/v2/envelope.proto"` without a copy of Courier's `proto/`.

use protox::file::{File, FileResolver};
use protox::Error;

/// Every Courier `.proto` file as `(import path, source)`.
pub const COURIER_PROTOS: &[(&str, &str)] = &[
    (
        "courier/v1/envelope.proto",
        include_str!("../../proto/courier/v1/envelope.proto"),
    ),
    (
        "courier/v1/session.proto",
        include_str!("../../proto/courier/v1/session.proto"),
    ),
    (
        "courier/v1/channels.proto",
        include_str!("../../proto/courier/v1/channels.proto"),
    ),
    (
        "courier/v1/presence.proto",
        include_str!("../../proto/courier/v1/presence.proto"),
    ),
    (
        "courier/v1/rpc.proto",
        include_str!("../../proto/courier/v1/rpc.proto"),
    ),
    (
        "courier/v2/envelope.proto",
        include_str!("../../proto/courier/v2/envelope.proto"),
    ),
    (
        "courier/v2/session.proto",
        include_str!("../../proto/courier/v2/session.proto"),
    ),
    (
        "courier/v2/channels.proto",
        include_str!("../../proto/courier/v2/channels.proto"),
    ),
    (
        "courier/v2/presence.proto",
        include_str!("../../proto/courier/v2/presence.proto"),
    ),
    (
        "courier/v2/rpc.proto",
        include_str!("../../proto/courier/v2/rpc.proto"),
    ),
];

/// Resolves `courier/...` imports from the embedded definitions.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmbeddedCourierResolver;

impl FileResolver for EmbeddedCourierResolver {
    fn open_file(&self, name: &str) -> Result<File, Error> {
        match COURIER_PROTOS.iter().find(|(path, _)| *path == name) {
            Some((path, source)) => File::from_source(path, source),
            None => Err(Error::file_not_found(name)),
        }
    }
}
