//! `courier gen`: code generation from the Courier definitions and a user's
//! own payload `.proto` files. `courier gen ts` writes TypeScript types and
//! codecs (see `docs/typescript.md`).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

/// Arguments of `courier gen`.
#[derive(Args)]
pub struct GenArgs {
    #[command(subcommand)]
    target: Target,
}

#[derive(Subcommand)]
enum Target {
    /// TypeScript: types, a discriminated `Envelope` union and codecs for
    /// JSON, MessagePack and Protobuf, one directory per proto package.
    Ts(TsArgs),
}

#[derive(Args)]
struct TsArgs {
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Courier protocol version whose envelope is generated (1 or 2).
    #[arg(long, default_value_t = 2)]
    version: u32,
    /// A payload `.proto` file of your own (repeatable).
    #[arg(long = "proto")]
    protos: Vec<PathBuf>,
    /// A directory imports are resolved in (repeatable); Courier's own
    /// definitions (`courier/v2/...`) are always available.
    #[arg(long = "include")]
    includes: Vec<PathBuf>,
    /// Module the generated code imports the Courier runtime from; a path
    /// starting with `.` is relative to `--out`.
    #[arg(long, default_value = "@courier/client/runtime")]
    runtime_import: String,
}

/// Runs `courier gen`.
pub fn run(args: GenArgs) -> anyhow::Result<()> {
    match args.target {
        Target::Ts(a) => {
            let mut config = courier_codegen::ts::TsConfig::new();
            config
                .courier_version(a.version)
                .runtime_import(a.runtime_import.clone())
                .generated_by(command_line());
            let mut includes = a.includes.clone();
            // A proto given by path is found through its own directory
            // unless an include already contains it.
            for p in &a.protos {
                if !a.includes.iter().any(|i| p.starts_with(i)) {
                    if let Some(dir) = p.parent() {
                        includes.push(if dir.as_os_str().is_empty() {
                            PathBuf::from(".")
                        } else {
                            dir.to_path_buf()
                        });
                    }
                }
            }
            let written = config
                .write(&a.protos, &includes, &a.out)
                .with_context(|| format!("generating TypeScript into {}", a.out.display()))?;
            for path in written {
                println!("{}", path.display());
            }
            // What the code imports, so a first build does not fail on it
            // (stdout stays the list of files).
            let runtime = if a.runtime_import.starts_with('.') || a.runtime_import.starts_with('/')
            {
                String::new()
            } else {
                format!(
                    "{} (npm package @courier/client, bindings/typescript/README.md) and ",
                    a.runtime_import
                )
            };
            eprintln!(
                "courier gen ts: the generated code imports {runtime}@bufbuild/protobuf/wire: add them to your project (npm install @bufbuild/protobuf)"
            );
            Ok(())
        }
    }
}

/// The command as the user typed it (`courier gen ts --out src/gen …`), for
/// the generated files' first line: the command that regenerates them.
fn command_line() -> String {
    let mut line = String::from("courier");
    for arg in std::env::args_os().skip(1) {
        // One comment line: a newline inside an argument must not end it.
        let arg = arg.to_string_lossy().replace(['\n', '\r'], " ");
        line.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"`$\\".contains(c)) {
            line.push('\'');
            line.push_str(&arg.replace('\'', "'\\''"));
            line.push('\'');
        } else {
            line.push_str(&arg);
        }
    }
    line
}
