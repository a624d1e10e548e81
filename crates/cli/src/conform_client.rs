//! `courier conform client -- <driver command>`: checks a client. The suite
//! plays a scripted Courier server on loopback and drives the client under
//! test through its driver process (docs/conformance-client.md); progress,
//! summary, reports, expected failures and exit codes are those of a server
//! run.

use std::sync::Arc;

use anyhow::bail;
use courier_conformance::client::ClientTarget;
use courier_conformance::report::term::TermProgress;
use courier_protocol::{Encoding, Subprotocol, Version};

use crate::conform::RunArgs;

/// Arguments of `courier conform client`.
#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// Protocol versions to run the cases in (default: 2,1).
    #[arg(long, value_delimiter = ',')]
    pub versions: Vec<u32>,
    /// Encodings to run the cases in (default: json,msgpack,proto).
    #[arg(long, value_delimiter = ',')]
    pub encodings: Vec<String>,
    /// Selection, policy, timing and reports, as for a server run.
    #[command(flatten)]
    pub run: RunArgs,
    /// Print the client faults of the mutant proof (name, what each breaks,
    /// the case patterns that must catch it, the clients that have it) as a
    /// JSON array, and exit; a client's own proof reads its cases from here.
    #[arg(long)]
    pub list_faults: bool,
    /// The command that starts the client's driver, after `--`.
    #[arg(
        last = true,
        required_unless_present = "list_faults",
        value_name = "DRIVER"
    )]
    pub command: Vec<String>,
}

/// Runs the client suite; returns the exit code (errors exit 2 in the caller).
pub async fn run_async(args: ClientArgs) -> anyhow::Result<i32> {
    if args.list_faults {
        println!(
            "{}",
            serde_json::to_string_pretty(courier_conformance::trace::CLIENT_MUTANTS)?
        );
        return Ok(0);
    }
    let mut config = args.run.config()?;
    let mut target = ClientTarget::new(args.command.clone());
    target.time_scale = args.run.time_scale;
    let versions: Vec<Version> = args
        .versions
        .iter()
        .map(|v| Version::from_number(*v).ok_or_else(|| anyhow::anyhow!("unknown version {v}")))
        .collect::<anyhow::Result<_>>()?;
    let encodings: Vec<Encoding> = args
        .encodings
        .iter()
        .map(|e| {
            Subprotocol::ALL
                .iter()
                .map(|s| s.encoding)
                .find(|x| x.as_str() == e)
                .ok_or_else(|| anyhow::anyhow!("unknown encoding `{e}` (json, msgpack, proto)"))
        })
        .collect::<anyhow::Result<_>>()?;
    target.subprotocols.retain(|sp| {
        (versions.is_empty() || versions.contains(&sp.version))
            && (encodings.is_empty() || encodings.contains(&sp.encoding))
    });
    if target.subprotocols.is_empty() {
        bail!("--versions and --encodings leave no subprotocol to run in");
    }
    if args.run.list {
        for id in config.selected_client_ids(&target) {
            println!("{id}");
        }
        return Ok(0);
    }
    config.progress(Arc::new(TermProgress::new(args.run.verbose)));
    eprintln!(
        "courier conform client: {} case instances, driver `{}`",
        config.selected_client_ids(&target).len(),
        args.command.join(" ")
    );
    let report = config.run_client(target).await;
    args.run.write_reports(&report)?;
    Ok(report.exit_code())
}
