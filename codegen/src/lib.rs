//! Build-time code generation for Courier: a user's payload `.proto` files,
//! compiled beside the Courier envelope, become Rust types that follow the
//! Courier encoding policy in JSON, MessagePack and Protobuf.
//!
//! The shape follows `prost_build::Config`: `&mut self` setters, one final
//! [`Config::compile`], and [`compile_payloads`] for the common case.
//!
//! # Examples
//!
//! In `build.rs`:
//!
//! ```no_run
//! // fn main() {
//! courier_codegen::compile_payloads(&["proto/chat/v1/chat.proto"], &["proto"]).unwrap();
//! // }
//! ```
//!
//! and in the crate (`OUT_DIR` exists only under a build script, so this
//! is shown, not compiled; `examples/chat` compiles it):
//!
//! ```text
//! pub mod chat {
//!     #[allow(clippy::all)] // generated code
//!     pub mod v1 {
//!         include!(concat!(env!("OUT_DIR"), "/chat.v1.rs"));
//!     }
//! }
//! ```
//!
//! See `docs/codegen.md` for the JSON shape of the generated types and
//! `examples/chat` for a complete crate.

mod embedded;
pub mod model;
mod naming;
mod policy;
#[cfg(feature = "typescript")]
pub mod ts;

use std::path::{Path, PathBuf};

pub use embedded::{EmbeddedCourierResolver, COURIER_PROTOS};
pub use model::PAYLOAD_FIELDS;
pub use prost_types::FileDescriptorSet;

/// Errors from code generation. All of them stop the build: fix the input
/// the message names and build again.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `.proto` file failed to parse or resolve (the message points at the line).
    #[error("proto compilation failed: {0}")]
    Proto(#[from] Box<protox::Error>),
    /// Reading or writing generated files failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The requested Courier version does not exist: pass 1 or 2 to
    /// [`Config::courier_version`].
    #[error("unknown Courier protocol version {0}; supported: 1, 2")]
    UnknownVersion(u32),
    /// A file imports the Courier definitions of another version than the
    /// one configured: import `courier/v{configured}/...` or change
    /// [`Config::courier_version`].
    #[error("{file} imports courier/v{imported}, but the payloads are configured for Courier version {configured}")]
    VersionMismatch {
        /// The importing file.
        file: String,
        /// The version it imports.
        imported: u32,
        /// The version configured.
        configured: u32,
    },
    /// A file uses something a Courier payload cannot carry (see `reason`,
    /// e.g. a Protobuf well-known type, or a file without a `package`):
    /// change the definition as the reason says.
    #[error("{file}: {reason}")]
    Unsupported {
        /// The file concerned.
        file: String,
        /// What is unsupported, and what to use instead.
        reason: String,
    },
}

impl From<model::Unsupported> for Error {
    fn from(e: model::Unsupported) -> Self {
        Error::Unsupported {
            file: e.file.clone(),
            reason: e.to_string(),
        }
    }
}

/// Builder for a `build.rs` that compiles payload definitions beside the
/// Courier envelope.
///
/// # Examples
///
/// ```no_run
/// let mut config = courier_codegen::Config::new();
/// config.courier_version(2);
/// config.compile(&["proto/chat.proto"], &["proto"]).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    version: u32,
    out_dir: Option<PathBuf>,
    runtime: String,
    courier_itself: bool,
    rerun_if_changed: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// A configuration for the newest Courier version, writing to `OUT_DIR`.
    pub fn new() -> Self {
        Config {
            version: 2,
            out_dir: None,
            runtime: "::courier_protocol::wire".into(),
            courier_itself: false,
            rerun_if_changed: true,
        }
    }

    /// The Courier version whose envelope the payloads are used with (1 or 2;
    /// default 2). Imports of `courier/vN/...` resolve to `courier_protocol::vN`.
    pub fn courier_version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Where generated files go (default: `$OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for every input (default
    /// true; prost-build prints none, so without this edits go unnoticed).
    pub fn rerun_if_changed(&mut self, yes: bool) -> &mut Self {
        self.rerun_if_changed = yes;
        self
    }

    /// Used by `courier-protocol` itself: generate the Courier packages with
    /// runtime path `crate::wire` and the envelope impls.
    #[doc(hidden)]
    pub fn courier_protocol_crate(&mut self) -> &mut Self {
        self.courier_itself = true;
        self.runtime = "crate::wire".into();
        self
    }

    /// Compiles `protos` (searched for in `includes`, then in the embedded
    /// Courier definitions) into one Rust file per proto package.
    pub fn compile(
        &mut self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        if !(1..=2).contains(&self.version) {
            return Err(Error::UnknownVersion(self.version));
        }
        let (fds, inputs) = load(protos, includes)?;
        if self.rerun_if_changed {
            for path in &inputs {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| {
                std::io::Error::other("OUT_DIR is not set: call from build.rs or set out_dir")
            })?),
        };
        let model = model::Model::new(&fds)?;
        let all = &model.packages;
        // Every package in the set is generated (prost-build does the same),
        // except Courier's own for users: those are `courier_protocol::vN`.
        let requested: Vec<String> = if self.courier_itself {
            all.clone()
        } else {
            check_user_files(&fds, self.version)?;
            all.iter()
                .filter(|p| !is_courier_package(p))
                .cloned()
                .collect()
        };
        let externs: Vec<(String, String)> = if self.courier_itself {
            vec![]
        } else {
            all.iter()
                .filter(|p| is_courier_package(p))
                .map(|p| {
                    (
                        format!(".{p}"),
                        format!("::courier_protocol::{}", &p["courier.".len()..]),
                    )
                })
                .collect()
        };
        let ctx = policy::Context {
            rt: &self.runtime,
            packages: &requested,
            externs: &externs,
            envelope_impls: self.courier_itself,
        };
        let attrs = policy::attributes(&model, &ctx);
        let mut prost = prost_build::Config::new();
        // Maps stay HashMaps: prost-derive's Debug for BTreeMap names
        // `::prost` directly, which users' crates do not depend on. Their
        // serde helper (`wire::maps`) writes keys in sorted order instead.
        prost.out_dir(&out_dir).bytes(["."]);
        if !self.courier_itself {
            prost.prost_path(format!("{}::prost", self.runtime));
        }
        for (proto, rust) in &externs {
            prost.extern_path(proto, rust);
        }
        for (path, a) in &attrs.messages {
            prost.message_attribute(path, a);
        }
        for (path, a) in &attrs.oneofs {
            prost.enum_attribute(path, a);
        }
        for (path, a) in &attrs.fields {
            prost.field_attribute(path, a);
        }
        // The whole set goes to prost, imports included: it needs every
        // message to decide derives (Eq, Copy), and it skips the items of
        // extern packages (Courier's own, for users) by itself.
        prost.compile_fds(fds.clone())?;
        for package in &requested {
            let file = out_dir.join(format!("{package}.rs"));
            let code = std::fs::read_to_string(&file)?;
            let mut code = postprocess(&code, self.courier_itself, &self.runtime);
            code.push_str(&policy::extra_code(&model, package, &ctx));
            std::fs::write(&file, code)?;
        }
        Ok(())
    }
}

/// Compiles payload definitions for the newest Courier version into `OUT_DIR`.
///
/// # Examples
///
/// ```no_run
/// courier_codegen::compile_payloads(&["proto/chat.proto"], &["proto"]).unwrap();
/// ```
pub fn compile_payloads(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<(), Error> {
    Config::new().compile(protos, includes)
}

/// Parses `protos` (and their imports, including the embedded Courier
/// definitions) into a descriptor set with source info (comments), and
/// returns the file-system paths read.
pub fn load(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<(FileDescriptorSet, Vec<PathBuf>), Error> {
    let mut resolver = protox::file::ChainFileResolver::new();
    for inc in includes {
        resolver.add(protox::file::IncludeFileResolver::new(
            inc.as_ref().to_path_buf(),
        ));
    }
    resolver.add(EmbeddedCourierResolver);
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_source_info(true).include_imports(true);
    for p in protos {
        let p = p.as_ref();
        // Accept paths given relative to the crate (`proto/chat.proto`) by
        // making them relative to the include that contains them.
        let name = includes
            .iter()
            .find_map(|inc| p.strip_prefix(inc.as_ref()).ok())
            .unwrap_or(p);
        compiler.open_file(name).map_err(Box::new)?;
    }
    let inputs = compiler
        .files()
        .filter_map(|f| f.path().map(Path::to_path_buf))
        .collect();
    Ok((compiler.file_descriptor_set(), inputs))
}

/// The descriptor set of Courier's own definitions for `version`.
pub fn courier_descriptors(version: u32) -> Result<FileDescriptorSet, Error> {
    if !(1..=2).contains(&version) {
        return Err(Error::UnknownVersion(version));
    }
    let no_includes: &[&Path] = &[];
    Ok(load(&[format!("courier/v{version}/envelope.proto")], no_includes)?.0)
}

/// Whether `package` is one of Courier's own (`courier.v1`, `courier.v2`).
pub(crate) fn is_courier_package(package: &str) -> bool {
    package == "courier.v1" || package == "courier.v2"
}

/// Refuses what user payload files cannot use, before prost writes code
/// that would not compile.
fn check_user_files(fds: &FileDescriptorSet, version: u32) -> Result<(), Error> {
    for f in &fds.file {
        if f.package().starts_with("google.protobuf") {
            // prost maps these to `::prost_types`, which has neither the
            // serde policy nor a place in a crate that depends only on
            // courier-protocol.
            return Err(Error::Unsupported {
                file: f.name().to_string(),
                reason: "Protobuf well-known types cannot be used in Courier payloads; \
                         use plain fields (e.g. `uint64 sent_at_ms` for a Timestamp)"
                    .into(),
            });
        }
        if f.package().is_empty() {
            return Err(Error::Unsupported {
                file: f.name().to_string(),
                reason: "the file has no `package`; add one such as `package myapp.v1;`".into(),
            });
        }
        for dep in &f.dependency {
            let imported = ["courier/v1/", "courier/v2/"]
                .iter()
                .position(|prefix| dep.starts_with(prefix))
                .map(|i| i as u32 + 1);
            if let Some(imported) = imported.filter(|v| *v != version) {
                return Err(Error::VersionMismatch {
                    file: f.name().to_string(),
                    imported,
                    configured: version,
                });
            }
        }
    }
    Ok(())
}

/// Edits prost's output where attributes cannot do the job:
///
/// - prost matches attribute paths by prefix, so a oneof field cannot carry
///   attributes without its members inheriting them; they are added here
///   (skip when unset, and `wire::oneof`'s forward-compatible reader).
/// - schemars' derive names `serde::Serialize` unqualified in the code it
///   writes for `serialize_with` fields, which does not resolve in a crate
///   that only depends on `courier-protocol`; each generated module imports
///   the runtime's `serde` under that name.
fn postprocess(code: &str, courier_itself: bool, rt: &str) -> String {
    let mut out = String::with_capacity(code.len() + 1024);
    let serde_import = |out: &mut String, indent: &str| {
        if !courier_itself {
            out.push_str(&format!(
                "{indent}#[allow(unused_imports)]\n{indent}use {rt}::serde;\n"
            ));
        }
    };
    let mut imported = false;
    for line in code.lines() {
        // After prost's `@generated` header line, which tools look for first.
        if !imported && !line.starts_with("//") {
            serde_import(&mut out, "");
            imported = true;
        }
        out.push_str(line);
        out.push('\n');
        let t = line.trim_start();
        let indent = &line[..line.len() - t.len()];
        if t.starts_with("pub mod ") && t.ends_with(" {") {
            serde_import(&mut out, &format!("{indent}    "));
        }
        if let Some(rest) = t.strip_prefix("#[prost(oneof = \"") {
            if courier_itself && t.contains("\"envelope::Body\"") {
                continue;
            }
            // The oneof enum's path, as prost wrote it for this field.
            let path = rest.split('"').next().unwrap_or_default();
            out.push_str(&format!(
                "{indent}#[serde(skip_serializing_if = \"::core::option::Option::is_none\", \
                 deserialize_with = \"{rt}::oneof::deserialize::<{path}, _>\")]\n"
            ));
        }
    }
    out
}
