//! RPC (features.md §RPC): every request answered exactly once with its
//! id, by an `rpc_response` for a registered method (named by the
//! profile's `[rpc]`) and by UNKNOWN_METHOD for any other.

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;

use super::features::{expect_error, open_features};
use super::util::{error_name, payload, sync};
use super::BASE;
use crate::case::{fail, Axes, CaseDef, CaseError, CaseResult, Ctx};
use crate::check;

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "rpc.unknown-method",
        title: "An rpc_request for an unregistered method gets exactly one UNKNOWN_METHOD error with its id",
        requirements: &["RPC-UNKNOWN-METHOD", "RPC-CORRELATION"],
        axes: Axes::PerVersion,
        needs: &["rpc"],
        run: |cx| Box::pin(rpc_unknown(cx)),
        ..BASE
    },
    CaseDef {
        id: "rpc.correlation",
        title: "Pipelined rpc_requests for a registered method each get exactly one rpc_response carrying their id",
        requirements: &["RPC-CORRELATION"],
        axes: Axes::PerVersion,
        needs: &["rpc"],
        run: |cx| Box::pin(rpc_correlation(cx)),
        ..BASE
    },
];

/// The answers (`rpc_response` or `error`) carrying one of `ids`, read
/// until a `ping` sync after them, so a second answer is seen too.
async fn answers(
    c: &mut crate::conn::Conn,
    cx: &Ctx,
    ids: &[&str],
) -> Result<Vec<(String, Result<(), i32>)>, CaseError> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + cx.step();
    while got.len() < ids.len() && tokio::time::Instant::now() < deadline {
        for e in c.expect_open_for(cx.ms(50)).await? {
            match e.body {
                Some(Body::RpcResponse(r)) => got.push((r.id, Ok(()))),
                Some(Body::Error(x)) if !x.id.is_empty() => got.push((x.id, Err(x.code))),
                _ => {}
            }
        }
    }
    sync(c, 72).await?;
    for e in c.expect_open_for(cx.ms(100)).await? {
        match e.body {
            Some(Body::RpcResponse(r)) => got.push((r.id, Ok(()))),
            Some(Body::Error(x)) if !x.id.is_empty() => got.push((x.id, Err(x.code))),
            _ => {}
        }
    }
    Ok(got)
}

async fn rpc_unknown(cx: Ctx) -> CaseResult {
    let (mut c, _) = open_features(&cx, "c1", &["rpc"]).await?;
    c.send_body(Body::RpcRequest(v2::RpcRequest {
        id: "c1".into(),
        method: "conformance.no-such-method".into(),
        payload: payload(serde_json::json!({})),
    }))
    .await?;
    expect_error(
        &mut c,
        "c1",
        v2::ErrorCode::UnknownMethod,
        "rpc_request c1 of an unregistered method",
        "RPC-UNKNOWN-METHOD",
    )
    .await?;
    sync(&mut c, 71).await?;
    let extra = c.expect_open_for(cx.ms(100)).await?;
    check!(
        !extra
            .iter()
            .any(|e| matches!(&e.body, Some(Body::Error(x)) if x.id == "c1")
                || matches!(&e.body, Some(Body::RpcResponse(x)) if x.id == "c1")),
        "a second answer to rpc_request c1 arrived (RPC-CORRELATION: exactly one answer)"
    );
    Ok(())
}

async fn rpc_correlation(cx: Ctx) -> CaseResult {
    let Some(rpc) = cx.profile().rpc.clone() else {
        return Err(CaseError::Unsupported(
            "the profile names no registered method ([rpc] method)".into(),
        ));
    };
    let (mut c, _) = open_features(&cx, "c1", &["rpc"]).await?;
    let ids = ["r1", "r2", "r3"];
    for id in ids {
        c.send_body(Body::RpcRequest(v2::RpcRequest {
            id: id.into(),
            method: rpc.method.clone(),
            payload: payload(rpc.payload.clone()),
        }))
        .await?;
    }
    let got = answers(&mut c, &cx, &ids).await?;
    for id in ids {
        let mine: Vec<_> = got.iter().filter(|(g, _)| g == id).collect();
        check!(
            !mine.is_empty(),
            "rpc_request {id} of registered method {:?} got no rpc_response or error carrying its id; answers seen: {:?} (RPC-CORRELATION)",
            rpc.method,
            got.iter().map(|(g, _)| g).collect::<Vec<_>>()
        );
        check!(
            mine.len() == 1,
            "rpc_request {id} got {} answers, expected exactly one (RPC-CORRELATION)",
            mine.len()
        );
        if let Err(code) = mine[0].1 {
            check!(
                code != v2::ErrorCode::UnknownMethod as i32,
                "rpc_request {id} of {:?}, which the profile says is registered, got UNKNOWN_METHOD",
                rpc.method
            );
            return Err(fail(format!(
                "rpc_request {id} of registered method {:?} with the profile's payload was answered with error {} (expected an rpc_response)",
                rpc.method,
                error_name(code)
            )));
        }
    }
    let strays: Vec<_> = got
        .iter()
        .filter(|(g, _)| !ids.contains(&g.as_str()))
        .collect();
    check!(
        strays.is_empty(),
        "answers with ids no request carried: {strays:?} (RPC-CORRELATION)"
    );
    Ok(())
}
