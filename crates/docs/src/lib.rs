//! Courier protocol reference generator (`courier docs`): a static HTML
//! site, the same content as Markdown, and an AsyncAPI 3.1 document, all
//! rendered through handlebars templates from the proto definitions (with
//! their comments), the JSON Schema, the normative spec in `docs/spec/`, the
//! conformance suite's case list, session transcripts recorded from a live
//! run of the reference server, and optionally a user's payload definitions.
//!
//! # Examples
//!
//! ```no_run
//! let mut config = courier_docs::Config::new();
//! config.out_dir("target/reference").payloads(&["proto/chat.proto"], &["proto"]);
//! let summary = config.generate().unwrap();
//! println!("{} files written", summary.files);
//! ```
//!
//! Output layout (under the output directory):
//!
//! | path | what |
//! |---|---|
//! | `index.html` | overview, message index, search |
//! | `messages/<type>.html` | one page per envelope type |
//! | `types.html`, `payloads.html` | messages and enums (Courier's, the user's) |
//! | `close-codes.html`, `requirements.html`, `conformance.html` | tables |
//! | `transcripts.html`, `history.html`, `spec/*.html` | transcripts, version history, the spec |
//! | `markdown/` | the same pages as Markdown (`markdown/README.md` is the index) |
//! | `asyncapi.yaml`, `asyncapi-v1.yaml` | AsyncAPI 3.1 documents of versions 2 and 1 |

pub mod asyncapi;
pub mod cases;
pub mod close_codes;
pub mod encodings;
pub mod history;
pub mod model;
mod render;
pub mod replies;
pub mod site;
pub mod spec;
pub mod transcript;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use courier_codegen::model::Model as Definitions;
use courier_protocol::examples;
use courier_protocol::Version;

pub use site::OutFile;

/// Why the reference could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `.proto` file (Courier's or the user's payloads) failed to parse:
    /// fix the file at the position the message gives.
    #[error("reading definitions: {0}")]
    Proto(#[from] courier_codegen::Error),
    /// The definitions break a documentation convention (the message names
    /// the `.proto` element to fix).
    #[error(transparent)]
    Model(#[from] model::ModelError),
    /// An example could not be encoded: a bug in the examples, report it.
    #[error("encoding an example: {0}")]
    Encode(#[from] courier_protocol::EncodeError),
    /// A template failed to compile: a bug in this crate, report it.
    #[error("template: {0}")]
    Template(#[from] handlebars::TemplateError),
    /// A template failed to render: a bug in this crate, report it.
    #[error("rendering: {0}")]
    Render(#[from] handlebars::RenderError),
    /// Writing the output failed: check that the directory is writable.
    #[error("writing {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Recording the session transcripts against the embedded reference
    /// server failed; generate without transcripts (`--no-transcripts`) and
    /// report the message.
    #[error("recording transcripts: {0}")]
    Transcript(#[from] transcript::TranscriptError),
    /// The inputs disagree with each other (a body type without a message
    /// or example): a bug, report it.
    #[error("inconsistent inputs: {0}")]
    Inconsistent(String),
}

/// Per envelope type, its example in both versions' encodings.
#[derive(Debug, Clone)]
pub struct ExampleDoc {
    pub type_name: String,
    pub v2: encodings::Encoded,
    /// Absent when the type does not exist in version 1.
    pub v1: Option<encodings::Encoded>,
}

/// Everything the pages are rendered from.
#[derive(Debug, Clone)]
pub struct Reference {
    pub v1: model::Model,
    pub v2: model::Model,
    pub changes: Vec<history::Change>,
    pub close_codes: Vec<close_codes::CloseCodeDoc>,
    pub examples: Vec<ExampleDoc>,
    pub cases: Vec<cases::CaseRef>,
    pub payloads: Option<model::Model>,
    pub transcripts: Vec<transcript::Scenario>,
    /// Name and version of the server the transcripts were recorded from.
    pub server_name: String,
    /// The AsyncAPI documents as YAML, by version.
    pub asyncapi_v2: String,
    pub asyncapi_v1: String,
    /// Per envelope type, its draft-07 payload schema as indented JSON.
    pub asyncapi_schemas: BTreeMap<String, String>,
}

/// Builder for one run of the generator.
///
/// # Examples
///
/// ```
/// let mut config = courier_docs::Config::new();
/// config.transcripts(false);
/// let files = config.render().unwrap();
/// assert!(files.iter().any(|f| f.path == "messages/publish.html"));
/// assert!(files.iter().any(|f| f.path == "asyncapi.yaml"));
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    out_dir: Option<PathBuf>,
    protos: Vec<PathBuf>,
    includes: Vec<PathBuf>,
    transcripts: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// Defaults: output to `courier-docs/`, no payload definitions,
    /// transcripts recorded (they need the embedded reference server and a
    /// few hundred milliseconds of loopback traffic).
    pub fn new() -> Self {
        Config {
            out_dir: None,
            protos: Vec::new(),
            includes: Vec::new(),
            transcripts: true,
        }
    }

    /// Where [`Config::generate`] writes (created if missing).
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The user's payload definitions to document on `payloads.html`, and
    /// the directories their imports are resolved from (Courier's own
    /// `courier/vN/*.proto` resolve without one).
    pub fn payloads(
        &mut self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> &mut Self {
        self.protos = protos.iter().map(|p| p.as_ref().to_path_buf()).collect();
        self.includes = includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
        self
    }

    /// Whether to record session transcripts against the embedded
    /// reference server (default true). Off, the transcript page says so;
    /// tests that snapshot the output turn it off because a live run has
    /// fresh session ids, epochs and timestamps.
    pub fn transcripts(&mut self, yes: bool) -> &mut Self {
        self.transcripts = yes;
        self
    }

    /// Collects the reference data without rendering it.
    pub fn collect(&self) -> Result<Reference, Error> {
        let defs = |version| -> Result<Definitions, courier_codegen::Error> {
            Ok(Definitions::new(&courier_codegen::courier_descriptors(
                version,
            )?)?)
        };
        let mut defs1 = defs(1)?;
        defs1.date(1, None);
        let mut defs2 = defs(2)?;
        defs2.date(2, Some(&defs1));
        let v1 = model::Model::courier(&defs1, 1)?;
        let v2 = model::Model::courier(&defs2, 2)?;
        let changes = history::diff(&v1, &v2);
        let close_codes = close_codes::table(&v2);

        let mut examples_out = Vec::new();
        let mut json_examples: BTreeMap<u32, BTreeMap<String, serde_json::Value>> = BTreeMap::new();
        for b in &v2.bodies {
            let ex2 = examples::get(Version::V2, &b.type_name).ok_or_else(|| {
                Error::Inconsistent(format!(
                    "courier_protocol::examples has no `{}`",
                    b.type_name
                ))
            })?;
            let enc2 = encodings::encode(Version::V2, &ex2.envelope)?;
            let enc1 = match examples::get(Version::V1, &b.type_name) {
                Some(ex1) if v1.body(&b.type_name).is_some() => {
                    Some(encodings::encode(Version::V1, &ex1.envelope)?)
                }
                _ => None,
            };
            for (version, enc) in [(Version::V2, Some(&enc2)), (Version::V1, enc1.as_ref())] {
                if let Some(value) = enc.and_then(|e| serde_json::from_str(&e.json).ok()) {
                    json_examples
                        .entry(version.number())
                        .or_default()
                        .insert(b.type_name.clone(), value);
                }
            }
            examples_out.push(ExampleDoc {
                type_name: b.type_name.clone(),
                v2: enc2,
                v1: enc1,
            });
        }
        let empty = BTreeMap::new();
        let api2 = asyncapi::build(Version::V2, &v2, json_examples.get(&2).unwrap_or(&empty));
        let api1 = asyncapi::build(Version::V1, &v1, json_examples.get(&1).unwrap_or(&empty));

        let payloads = if self.protos.is_empty() {
            None
        } else {
            let (fds, _) = courier_codegen::load(&self.protos, &self.includes)?;
            let packages: Vec<String> = fds
                .file
                .iter()
                .filter(|f| {
                    !f.package().starts_with("courier.")
                        && !f.package().starts_with("google.protobuf")
                })
                .map(|f| f.package().to_string())
                .collect();
            let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
            let defs = Definitions::new(&fds).map_err(courier_codegen::Error::from)?;
            Some(model::Model::build(&defs, &packages, 0))
        };

        let (transcripts, server_name) = if self.transcripts {
            transcript::record_all()?
        } else {
            (Vec::new(), String::new())
        };

        Ok(Reference {
            v1,
            v2,
            changes,
            close_codes,
            examples: examples_out,
            cases: cases::conformance_cases(),
            payloads,
            transcripts,
            server_name,
            asyncapi_v2: yaml::to_yaml(&api2.document),
            asyncapi_v1: yaml::to_yaml(&api1.document),
            asyncapi_schemas: api2.schemas,
        })
    }

    /// Renders every output file in memory.
    pub fn render(&self) -> Result<Vec<OutFile>, Error> {
        let reference = self.collect()?;
        let mut files = site::build(&reference)?;
        files.push(OutFile {
            path: "asyncapi.yaml".into(),
            contents: reference.asyncapi_v2.clone(),
        });
        files.push(OutFile {
            path: "asyncapi-v1.yaml".into(),
            contents: reference.asyncapi_v1.clone(),
        });
        Ok(files)
    }

    /// Renders and writes everything to the output directory.
    pub fn generate(&self) -> Result<Summary, Error> {
        let dir = self
            .out_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("courier-docs"));
        let files = self.render()?;
        for f in &files {
            let path = dir.join(&f.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            std::fs::write(&path, &f.contents).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(Summary {
            out_dir: dir,
            files: files.len(),
        })
    }
}

/// What [`Config::generate`] wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The output directory.
    pub out_dir: PathBuf,
    /// Number of files written.
    pub files: usize,
}
