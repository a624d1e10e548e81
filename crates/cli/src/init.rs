//! `courier init`: writes a new project: a payload `.proto`, a Rust server
//! embedding `courier-server` with typed payloads from `build.rs`, a
//! TypeScript browser client on generated bindings, a `courier conform`
//! profile and a README (templates in `crates/cli/templates/init/`).
//!
//! Courier's crates are not on crates.io, so the project depends on them by
//! path (a local checkout, the default: works offline and follows the
//! checkout) or by git (`--courier-git`, pinned with `--courier-rev`: what a
//! team shares). See `docs/init.md`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;

/// Arguments of `courier init`.
#[derive(Args)]
pub struct InitArgs {
    /// Directory to create; it must not exist or be empty. Its last
    /// component names the project unless `--name` is given.
    dir: PathBuf,
    /// Project name: a lowercase letter, then lowercase letters, digits and
    /// `-` (it names the crate, the proto package and the npm package).
    #[arg(long, value_parser = parse_name)]
    name: Option<String>,
    /// Depend on the Courier crates of this checkout (path dependencies).
    /// Default: the checkout this `courier` was built from, if still there.
    #[arg(long, conflicts_with = "courier_git")]
    courier_path: Option<PathBuf>,
    /// Depend on the Courier crates of this git repository instead.
    #[arg(long)]
    courier_git: Option<String>,
    /// With `--courier-git`: the revision (commit, tag or branch) to pin.
    #[arg(long, requires = "courier_git")]
    courier_rev: Option<String>,
    /// npm spec of `@courier/client` for `web/package.json` (a directory,
    /// a tarball made by `npm pack`, a version). Default: the checkout's
    /// `bindings/typescript` directory.
    #[arg(long)]
    client_npm: Option<String>,
}

/// Where the Courier crates come from.
enum Source {
    Path(PathBuf),
    Git { url: String, rev: Option<String> },
}

impl Source {
    /// The dependency's value for the crate at `dir` of the checkout (`crates/server`).
    fn dep(&self, dir: &str) -> String {
        match self {
            Source::Path(root) => {
                format!("{{ path = {:?} }}", root.join(dir).display().to_string())
            }
            Source::Git { url, rev: None } => format!("{{ git = {url:?} }}"),
            Source::Git {
                url,
                rev: Some(rev),
            } => format!("{{ git = {url:?}, rev = {rev:?} }}"),
        }
    }
}

fn parse_name(s: &str) -> Result<String, String> {
    let ok = s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a project name: use a lowercase letter, then lowercase letters, digits \
             and single `-` (at most 64 characters), e.g. my-app"
        ))
    }
}

/// The checkout this binary was built from, when it is still there.
fn built_from() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("crates/server/Cargo.toml")
        .exists()
        .then(|| root.canonicalize().ok())
        .flatten()
}

/// Runs `courier init`.
pub fn run(args: InitArgs) -> anyhow::Result<()> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => {
            let last = args
                .dir
                .file_name()
                .and_then(|n| n.to_str())
                .context("the directory has no name to take the project's from: give --name")?;
            // A usage error, as a bad --name is (exit code 2).
            parse_name(last).unwrap_or_else(|e| {
                clap::Error::raw(
                    clap::error::ErrorKind::InvalidValue,
                    format!("{e}; or give --name\n"),
                )
                .exit()
            })
        }
    };
    let source = match (&args.courier_git, &args.courier_path) {
        (Some(url), _) => Source::Git {
            url: url.clone(),
            rev: args.courier_rev.clone(),
        },
        (None, Some(p)) => {
            let root = p
                .canonicalize()
                .with_context(|| format!("--courier-path {}", p.display()))?;
            if !root.join("crates/server/Cargo.toml").exists() {
                bail!(
                    "--courier-path {}: not a Courier checkout (no crates/server/Cargo.toml)",
                    root.display()
                );
            }
            Source::Path(root)
        }
        (None, None) => Source::Path(built_from().context(
            "the Courier checkout this binary was built from is gone: give --courier-path DIR \
             or --courier-git URL",
        )?),
    };
    let client_npm = match (&args.client_npm, &source) {
        (Some(spec), _) => spec.clone(),
        (None, Source::Path(root)) => {
            format!("file:{}", root.join("bindings/typescript").display())
        }
        (None, Source::Git { .. }) => bail!(
            "with --courier-git, say where @courier/client comes from: --client-npm SPEC \
             (e.g. a tarball made by `npm pack` in bindings/typescript)"
        ),
    };
    if args.dir.exists()
        && std::fs::read_dir(&args.dir)
            .with_context(|| format!("reading {}", args.dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} exists and is not empty: choose a new directory",
            args.dir.display()
        );
    }
    let project = Project::new(&name, &source, &client_npm);
    project.write(&args.dir)?;
    println!("created {} in {}", name, args.dir.display());
    println!(
        "next: cd {} && cargo run   (then: cd web && npm install && npm run dev)",
        args.dir.display()
    );
    Ok(())
}

/// The names a project's files are written with.
struct Project {
    name: String,
    krate: String,
    pkg: String,
    cargo_toml: String,
    client_npm: String,
    dep_how: String,
    client_how: &'static str,
}

impl Project {
    fn new(name: &str, source: &Source, client_npm: &str) -> Project {
        let krate = name.replace('-', "_");
        let dep = |name: &str, dir: &str| format!("{name} = {}", source.dep(dir));
        let cargo_toml = format!(
            r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

# Courier's crates ({how}).
[dependencies]
{server}
{protocol}
# Payloads and RPC arguments are `Bytes` (canonical MessagePack).
bytes = "1"
tokio = {{ version = "1", features = ["rt-multi-thread", "macros", "net", "time", "sync", "process", "io-util", "signal"] }}

[build-dependencies]
{codegen}

[dev-dependencies]
{client}
futures-util = {{ version = "0.3", default-features = false, features = ["sink", "std"] }}

# A project of its own, also when created inside another workspace.
[workspace]

# Dependencies optimised a little: the protocol's codecs and the server run
# much faster in tests, at little cost to build time.
[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
opt-level = 1
"#,
            how = match source {
                Source::Path(_) => "path dependencies on a local checkout",
                Source::Git { .. } => "git dependencies",
            },
            server = dep("courier-server", "crates/server"),
            protocol = dep("courier-protocol", "crates/protocol"),
            codegen = dep("courier-codegen", "codegen"),
            client = dep("courier-client", "crates/client"),
        );
        let dep_how = match source {
            Source::Path(root) => format!(
                "by path from the checkout in `{}`: it works offline and follows that \
                 checkout; to share the project, switch to git dependencies (`git = \"…\", \
                 rev = \"…\"`) pinned to one revision",
                root.display()
            ),
            Source::Git { url, rev } => format!(
                "from git (`{url}`{}): every machine builds the same revision",
                rev.as_ref()
                    .map(|r| format!(", revision `{r}`"))
                    .unwrap_or_default()
            ),
        };
        let client_how = if client_npm.starts_with("file:") && !client_npm.ends_with(".tgz") {
            ": a directory, which npm links; build it first there (`npm ci && npm run build`)"
        } else {
            ""
        };
        Project {
            name: name.to_string(),
            pkg: krate.clone(),
            krate,
            cargo_toml,
            client_npm: client_npm.to_string(),
            dep_how,
            client_how,
        }
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("__NAME__", &self.name)
            .replace("__CRATE__", &self.krate)
            .replace("__PKG__", &self.pkg)
            .replace("__CLIENT_SPEC__", &self.client_npm)
            .replace("__DEP_HOW__", &self.dep_how)
            .replace("__CLIENT_HOW__", self.client_how)
    }

    /// Every file of the project, path and content.
    fn files(&self) -> Vec<(String, String)> {
        macro_rules! t {
            ($path:literal) => {
                include_str!(concat!("../templates/init/", $path))
            };
        }
        let proto = format!("proto/{}/v1/app.proto", self.pkg);
        let mut out = vec![("Cargo.toml".to_string(), self.cargo_toml.clone())];
        for (path, template) in [
            (proto.as_str(), t!("app.proto")),
            ("build.rs", t!("build.rs")),
            ("src/lib.rs", t!("src/lib.rs")),
            ("src/main.rs", t!("src/main.rs")),
            ("tests/smoke.rs", t!("tests/smoke.rs")),
            ("courier.toml", t!("courier.toml")),
            ("conformance.toml", t!("conformance.toml")),
            ("README.md", t!("README.md")),
            (".gitignore", t!("gitignore")),
            ("web/package.json", t!("web/package.json")),
            ("web/tsconfig.json", t!("web/tsconfig.json")),
            ("web/index.html", t!("web/index.html")),
            ("web/src/chat.ts", t!("web/src/chat.ts")),
            ("web/src/main.ts", t!("web/src/main.ts")),
            ("web/test/smoke.ts", t!("web/test/smoke.ts")),
        ] {
            out.push((path.to_string(), self.fill(template)));
        }
        out
    }

    fn write(&self, dir: &Path) -> anyhow::Result<()> {
        for (path, content) in self.files() {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, content)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        // The TypeScript bindings of the payloads, as `npm run gen` writes them.
        let mut ts = courier_codegen::ts::TsConfig::new();
        // What regenerates them: `npm run gen` in web/.
        ts.courier_version(2).generated_by(format!(
            "courier gen ts --out src/gen --include ../proto --proto ../proto/{}/v1/app.proto` (npm run gen) in `web/",
            self.pkg
        ));
        ts.write(
            &[dir.join(format!("proto/{}/v1/app.proto", self.pkg))],
            &[dir.join("proto")],
            dir.join("web/src/gen"),
        )
        .context("generating the TypeScript bindings")?;
        Ok(())
    }
}
