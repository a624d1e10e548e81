//! The TypeScript generator: Courier definitions of one version plus a
//! user's payload `.proto` files become TypeScript types, a discriminated
//! `Envelope` union and codecs for the JSON/MessagePack data model and for
//! Protobuf, rendered through handlebars templates (`templates/`).
//!
//! For every proto package `a.b` it writes three ES modules under `a/b/`:
//! `types.ts` (types and enum tables), `wire.ts` (to and from the JSON and
//! MessagePack data model, which is also the payload data model) and
//! `proto.ts` (Protobuf binary, on `@bufbuild/protobuf/wire`). The generated
//! code follows `docs/spec/encoding.md` exactly as the Rust types do, maps
//! and oneofs included (`docs/typescript.md`): `examples/chat`'s fixtures
//! check the two byte for byte.
//!
//! # Examples
//!
//! ```no_run
//! let mut config = courier_codegen::ts::TsConfig::new();
//! config.courier_version(2).runtime_import("@courier/client/runtime");
//! config.write(&["proto/chat.proto"], &["proto"], "web/src/gen").unwrap();
//! ```

mod model;
mod render;

use std::path::{Path, PathBuf};

pub use render::HEADER;

/// Why TypeScript generation failed. None of these is worth retrying: fix
/// the input named in the message.
#[derive(Debug, thiserror::Error)]
pub enum TsError {
    /// Loading the `.proto` files failed (syntax, missing import, bad version).
    #[error(transparent)]
    Codegen(#[from] crate::Error),
    /// A proto construct the generator does not support (proto2 groups, a
    /// Courier version other than the configured one): change the definition.
    #[error("{item}: {what} is not supported by the TypeScript generator")]
    Unsupported {
        /// The fully-qualified proto item.
        item: String,
        /// What it uses.
        what: String,
    },
    /// A template failed to render: a bug in the generator, please report it.
    #[error("template error: {0}")]
    Template(String),
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// One generated file, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path below the output directory, with `/` separators (`courier/v2/types.ts`).
    pub path: String,
    /// The file's text.
    pub content: String,
}

/// Builder for TypeScript generation, shaped like `prost_build::Config`.
///
/// # Examples
///
/// ```
/// let files = courier_codegen::ts::TsConfig::new()
///     .courier_version(2)
///     .generate(&[] as &[&str], &[] as &[&str])
///     .unwrap();
/// assert!(files.iter().any(|f| f.path == "courier/v2/types.ts"));
/// ```
#[derive(Debug, Clone)]
pub struct TsConfig {
    version: u32,
    runtime_import: String,
}

impl Default for TsConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TsConfig {
    /// Generates for the newest Courier version, importing the runtime from
    /// the `@courier/client` package.
    pub fn new() -> Self {
        TsConfig {
            version: 2,
            runtime_import: "@courier/client/runtime".into(),
        }
    }

    /// The Courier version whose envelope is generated (1 or 2; default 2).
    pub fn courier_version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Where generated modules import the runtime from (default
    /// `@courier/client/runtime`). A path starting with `.` is taken relative
    /// to the output directory and rewritten for each file's depth; this is
    /// how the checked-in bindings import `src/runtime/index.js`.
    pub fn runtime_import(&mut self, spec: impl Into<String>) -> &mut Self {
        self.runtime_import = spec.into();
        self
    }

    /// Generates the Courier package of the chosen version and the packages
    /// of `protos` (searched in `includes`), in memory.
    pub fn generate(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Vec<GeneratedFile>, TsError> {
        if !(1..=2).contains(&self.version) {
            return Err(crate::Error::UnknownVersion(self.version).into());
        }
        let courier = format!("courier/v{}/envelope.proto", self.version);
        let mut all: Vec<PathBuf> = vec![PathBuf::from(&courier)];
        all.extend(protos.iter().map(|p| p.as_ref().to_path_buf()));
        let (fds, _) = crate::load(&all, includes)?;
        let mut packages: Vec<String> = vec![format!("courier.v{}", self.version)];
        for f in &fds.file {
            let p = f.package().to_string();
            if !p.starts_with("courier.") && !packages.contains(&p) {
                packages.push(p);
            }
        }
        if let Some(other) = fds
            .file
            .iter()
            .map(|f| f.package())
            .find(|p| p.starts_with("courier.v") && *p != packages[0])
        {
            return Err(TsError::Unsupported {
                item: other.to_string(),
                what: format!("importing a Courier version other than {}", packages[0]),
            });
        }
        let model = model::build(&fds, &packages)?;
        render::render(&model, &self.runtime_import)
    }

    /// Generates and writes every file below `out_dir`, returning the paths
    /// written. Files are rewritten only when their content changed.
    pub fn write(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
        out_dir: impl AsRef<Path>,
    ) -> Result<Vec<PathBuf>, TsError> {
        let mut written = Vec::new();
        for file in self.generate(protos, includes)? {
            let path = out_dir.as_ref().join(&file.path);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(file.content.as_str()) {
                let io = |source| TsError::Write {
                    path: path.clone(),
                    source,
                };
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                std::fs::write(&path, &file.content).map_err(io)?;
            }
            written.push(path);
        }
        Ok(written)
    }
}
