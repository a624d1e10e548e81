//! The `courier` command: one binary whose subcommands generate code, serve,
//! check conformance, publish docs and generate load.

use clap::{Parser, Subcommand};

mod compat;
mod conform;
mod conform_client;
mod decode;
mod docs;
mod gen;
mod init;
mod load;
mod serve;
mod tap;

#[derive(Parser)]
#[command(
    name = "courier",
    version,
    about = "Courier: realtime message protocol toolkit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Report every change between two versions of payload protos that
    /// breaks a reader or writer in JSON, MessagePack or Protobuf.
    Compat(compat::CompatArgs),
    /// Run the conformance suite against a server (or the embedded reference server).
    Conform(conform::ConformArgs),
    /// Show the protocol working end to end: encode and decode one envelope
    /// of every type in every version and encoding.
    Demo,
    /// Decode frames (hex, base64, a file, stdin) or a pcap/pcapng capture of
    /// a session into readable envelopes.
    Decode(decode::DecodeArgs),
    /// Generate code from the Courier definitions and your payload protos.
    Gen(gen::GenArgs),
    /// Create a new project: payload proto, Rust server, TypeScript browser
    /// client, conformance profile.
    Init(init::InitArgs),
    /// Write the protocol reference: HTML site, Markdown and AsyncAPI 3.1.
    Docs(docs::DocsArgs),
    /// Generate load against a server: fan-out throughput, latency, idle memory.
    Load(load::LoadArgs),
    /// Run the reference server (WebSocket, SSE, /healthz, /metrics).
    Serve(serve::ServeArgs),
    /// Talk to a server frame by frame: send envelopes in the JSON form,
    /// print what arrives (gaps and duplicates flagged), check --expect.
    Tap(tap::TapArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Compat(args) => std::process::exit(compat::run(args)?),
        Command::Conform(args) => std::process::exit(conform::run(args)?),
        Command::Demo => demo(),
        Command::Decode(args) => std::process::exit(decode::run(args)?),
        Command::Gen(args) => gen::run(args),
        Command::Docs(args) => docs::run(args),
        Command::Init(args) => init::run(args),
        Command::Load(args) => load::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Tap(args) => std::process::exit(tap::run(args)?),
    }
}

fn demo() -> anyhow::Result<()> {
    use courier_protocol::{v2, wire, Codec, Subprotocol};
    let publish = v2::Envelope {
        body: Some(v2::envelope::Body::Publish(v2::Publish {
            id: "p-1".into(),
            channel: "chat".into(),
            payload: wire::payload::from_json(&serde_json::json!({"text": "hello"}))?,
        })),
    };
    for sp in Subprotocol::ALL {
        let codec = Codec::new(sp);
        let frame = codec.encode(&publish)?;
        let back: v2::Envelope = codec.decode(&frame)?;
        anyhow::ensure!(back == publish, "round trip failed for {sp}");
        println!("{sp:20} {} bytes", frame.len());
    }
    Ok(())
}
