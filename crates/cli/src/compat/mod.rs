//! `courier compat`: the schema compatibility gate. Parses two versions of
//! a set of payload protos with courier-codegen's loader (protox), builds a
//! model of each (`model.rs`) and reports every change that breaks a
//! reader or writer in JSON, MessagePack or Protobuf (`rules.rs`), with
//! file, line and encoding. See docs/compat.md.

mod model;
mod rules;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use clap::Args;

use rules::Enc;

#[derive(Args)]
pub struct CompatArgs {
    /// The old version's directory of .proto files (with --git-ref: the
    /// directory whose committed and current versions are compared).
    old: PathBuf,
    /// The new version's directory.
    new: Option<PathBuf>,
    /// Compare the directory as committed at this git ref (old) with the
    /// working tree (new): `courier compat --git-ref origin/main proto/`.
    #[arg(long)]
    git_ref: Option<String>,
    /// Extra import path (repeatable). Each file's own root is found from
    /// its package (`proto/chat/v1/chat.proto` with `package chat.v1` has
    /// root `proto/`); Courier's definitions are built in.
    #[arg(long = "include", short = 'I')]
    includes: Vec<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the command; returns the exit code: 0 compatible, 1 breaking
/// changes found, 2 the definitions could not be read.
pub fn run(args: CompatArgs) -> anyhow::Result<i32> {
    match compare(&args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(2)
        }
    }
}

fn compare(args: &CompatArgs) -> anyhow::Result<i32> {
    let scratch;
    let (old_dir, new_dir, old_label) = match (&args.git_ref, &args.new) {
        (Some(r), None) => {
            scratch = Scratch::new()?;
            let old = checkout(r, &args.old, &scratch.0)?;
            (
                old,
                args.old.clone(),
                Some((scratch.0.clone(), format!("{r}:"))),
            )
        }
        (None, Some(new)) => (args.old.clone(), new.clone(), None),
        (Some(_), Some(_)) => anyhow::bail!("with --git-ref give one directory"),
        (None, None) => anyhow::bail!("give two directories, or one with --git-ref"),
    };
    let old = Side::load(&old_dir, &args.includes, old_label.as_ref())?;
    let new = Side::load(&new_dir, &args.includes, None)?;
    // `courier.v1` compares with `courier.v2`: when each side is one
    // package and they differ, names are compared relative to it.
    let strip = old.packages.len() == 1 && new.packages.len() == 1 && old.packages != new.packages;
    let old_model = old.model(strip)?;
    let new_model = new.model(strip)?;
    let findings = rules::check(&old_model, &new_model);
    let count = |e: Enc| findings.iter().filter(|f| f.breaks.contains(&e)).count();
    if args.json {
        let list: Vec<_> = findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "file": f.loc.file, "line": f.loc.line, "subject": f.subject,
                    "change": f.what,
                    "breaks": f.breaks.iter().map(|e| e.name()).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "breaking": list,
                "compared": {"messages": old_model.messages.len(), "enums": old_model.enums.len()},
            })
        );
    } else {
        for f in &findings {
            let breaks: Vec<_> = f.breaks.iter().map(|e| e.name()).collect();
            println!(
                "{}: {}: {} [breaks {}]",
                f.loc,
                f.subject,
                f.what,
                breaks.join(", ")
            );
        }
        if findings.is_empty() {
            println!(
                "compatible: no breaking change in {} messages and {} enums (json, msgpack, protobuf)",
                old_model.messages.len(),
                old_model.enums.len()
            );
        } else {
            println!(
                "{} breaking change{} (json: {}, msgpack: {}, protobuf: {})",
                findings.len(),
                if findings.len() == 1 { "" } else { "s" },
                count(Enc::Json),
                count(Enc::MsgPack),
                count(Enc::Protobuf)
            );
        }
    }
    Ok(if findings.is_empty() { 0 } else { 1 })
}

/// One version: its parsed files.
struct Side {
    set: courier_codegen::FileDescriptorSet,
    /// Descriptor names of the files in the directory.
    names: BTreeSet<String>,
    packages: BTreeSet<String>,
    /// Descriptor name -> shown path.
    shown: Vec<(String, String)>,
}

impl Side {
    fn load(
        dir: &Path,
        extra: &[PathBuf],
        label: Option<&(PathBuf, String)>,
    ) -> anyhow::Result<Side> {
        let mut files = Vec::new();
        walk(dir, &mut files, 0)?;
        anyhow::ensure!(!files.is_empty(), "no .proto files under {}", dir.display());
        let mut roots: Vec<PathBuf> = Vec::new();
        let mut names = BTreeSet::new();
        let mut shown = Vec::new();
        for f in &files {
            let root = root_of(f)?;
            let name = f
                .strip_prefix(&root)
                .unwrap_or(f)
                .to_string_lossy()
                .replace('\\', "/");
            let display = match label {
                Some((tmp, prefix)) => format!(
                    "{prefix}{}",
                    f.strip_prefix(tmp).unwrap_or(f).to_string_lossy()
                ),
                None => f.display().to_string(),
            };
            shown.push((name.clone(), display));
            names.insert(name);
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
        roots.extend(extra.iter().cloned());
        let (set, _) = courier_codegen::load(&files, &roots).map_err(|e| match e {
            courier_codegen::Error::Proto(e) => proto_error(&e, &files),
            e => anyhow::anyhow!("{}: {e}", dir.display()),
        })?;
        let packages = set
            .file
            .iter()
            .filter(|f| names.contains(f.name()))
            .map(|f| f.package().to_string())
            .collect();
        Ok(Side {
            set,
            names,
            packages,
            shown,
        })
    }

    fn model(&self, strip: bool) -> anyhow::Result<model::Schema> {
        let defs = courier_codegen::model::Model::new(&self.set)?;
        let display = |name: &str| {
            self.shown
                .iter()
                .find(|(n, _)| n == name)
                .map_or(name.to_string(), |(_, d)| d.clone())
        };
        let named = |name: &str| self.names.contains(name);
        Ok(model::build(&defs, &named, strip, &display))
    }
}

/// A parse or resolution error as `file:line: message`.
fn proto_error(e: &protox::Error, files: &[PathBuf]) -> anyhow::Error {
    use miette::Diagnostic;
    let Some(name) = e.file() else {
        return anyhow::anyhow!("{e}");
    };
    let path = files.iter().find(|f| f.ends_with(name));
    let line = path
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| {
            let offset = e.labels()?.next()?.offset();
            Some(
                text.as_bytes()[..offset.min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1,
            )
        });
    let shown = path.map_or(name.to_string(), |p| p.display().to_string());
    match line {
        Some(line) => anyhow::anyhow!("{shown}:{line}: {e}"),
        None => anyhow::anyhow!("{shown}: {e}"),
    }
}

/// Every `.proto` file under `dir`, sorted (bounded depth: symlink loops).
fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        depth < 32,
        "directories nested too deeply under {}",
        dir.display()
    );
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out, depth + 1)?;
        } else if p.extension().is_some_and(|x| x == "proto") {
            out.push(p);
        }
    }
    Ok(())
}

/// The import root of a file: its directory minus the package's path
/// (`a/proto/chat/v1/x.proto`, `package chat.v1` -> `a/proto`), else its
/// directory.
fn root_of(file: &Path) -> anyhow::Result<PathBuf> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    let package = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("package "))
        .map(|p| p.trim_end_matches(';').trim().to_string());
    let Some(package) = package else {
        return Ok(dir);
    };
    let mut root = dir.clone();
    for part in package.split('.').rev() {
        if root.file_name().is_some_and(|n| n == part) {
            root.pop();
        } else {
            return Ok(dir);
        }
    }
    Ok(root)
}

/// A temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("courier-compat-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("running git")?;
    anyhow::ensure!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out.stdout)
}

/// Writes `dir`'s `.proto` files as of `git_ref` under `into`, keeping
/// their repository paths; returns `dir`'s counterpart there.
fn checkout(git_ref: &str, dir: &Path, into: &Path) -> anyhow::Result<PathBuf> {
    let top = String::from_utf8(git(dir, &["rev-parse", "--show-toplevel"])?)?;
    let prefix = String::from_utf8(git(dir, &["rev-parse", "--show-prefix"])?)?;
    let (top, prefix) = (PathBuf::from(top.trim()), prefix.trim().to_string());
    let listing = git(
        &top,
        &["ls-tree", "-r", "-z", "--name-only", git_ref, "--", &prefix],
    )?;
    for path in listing.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let path = String::from_utf8_lossy(path);
        if !path.ends_with(".proto") {
            continue;
        }
        let bytes = git(&top, &["show", &format!("{git_ref}:{path}")])?;
        let target = into.join(&*path);
        std::fs::create_dir_all(target.parent().expect("a file path has a parent"))?;
        std::fs::write(target, bytes)?;
    }
    let old = into.join(&prefix);
    anyhow::ensure!(
        old.is_dir(),
        "{} does not exist at {git_ref}",
        dir.display()
    );
    Ok(old)
}
