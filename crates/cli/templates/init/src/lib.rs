//! __NAME__: a realtime server on Courier. The payload types come from `proto/` (build.rs); the
//! server is Courier's reference server with this application's RPC methods.

use bytes::Bytes;
use courier_protocol::wire;
use courier_server::rpc::{RpcContext, RpcError};
use courier_server::{ServerBuilder, ServerConfig};

/// The payload types of `proto/__PKG__/v1/app.proto`.
pub mod payloads {
    /// Version 1 (`package __PKG__.v1`).
    #[allow(clippy::all)] // generated code
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/__PKG__.v1.rs"));
    }
}

use payloads::v1::{GreetReply, GreetRequest};

/// The server for `config`, with the `greet` method. Start it with `.start().await`.
pub fn server(config: ServerConfig) -> ServerBuilder {
    let mut builder = ServerBuilder::new(config);
    builder.rpc("greet", |_ctx: RpcContext, args: Bytes| async move {
        let request: GreetRequest =
            wire::from_payload(&args).map_err(|e| RpcError::BadRequest(e.to_string()))?;
        if request.name.is_empty() {
            return Err(RpcError::BadRequest("name is empty".into()));
        }
        let reply = GreetReply {
            greeting: format!("Hello, {}!", request.name),
        };
        wire::to_payload(&reply).map_err(|e| RpcError::Internal(e.to_string()))
    });
    builder
}
