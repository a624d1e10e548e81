//! In-band credential refresh and per-operation authorization
//! (session.md §5-6).

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;

use super::util::{error_name, reply, subscribe, sync, try_publish, try_subscribe};
use super::BASE;
use crate::case::{fail, Axes, CaseDef, CaseError, CaseResult, Ctx};
use crate::check;
use crate::conn::Conn;
use crate::profile::TokenKind;

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "auth.refresh",
        title: "refresh with valid credentials answers refreshed; invalid or expired ones INVALID_TOKEN, session intact",
        requirements: &["AUTH-REFRESH", "ERR-SESSION-CONTINUES"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(refresh(cx)),
        ..BASE
    },
    CaseDef {
        id: "auth.refresh-same-user",
        title: "refresh with another user's credentials is rejected with INVALID_TOKEN",
        requirements: &["AUTH-REFRESH-SAME-USER"],
        axes: Axes::Once,
        run: |cx| Box::pin(refresh_same_user(cx)),
        ..BASE
    },
    CaseDef {
        id: "authz.denial-is-error",
        title: "A forbidden subscribe or publish is an error reply with FORBIDDEN, id and channel; the connection stays open",
        requirements: &["AUTHZ-DENIAL-IS-ERROR", "ERR-SESSION-CONTINUES"],
        axes: Axes::PerVersion,
        needs: &["forbidden"],
        run: |cx| Box::pin(denial_is_error(cx)),
        ..BASE
    },
    CaseDef {
        id: "authz.per-operation",
        title: "Permissions follow the credentials in force at each operation, including after refresh",
        requirements: &["AUTHZ-PER-OPERATION", "AUTH-REFRESH"],
        axes: Axes::Once,
        needs: &["forbidden"],
        run: |cx| Box::pin(per_operation(cx)),
        ..BASE
    },
    CaseDef {
        id: "auth.reauth-timeout",
        title: "After reauth_request, a refresh in time keeps the session; none closes it with 4301",
        requirements: &["AUTH-REAUTH-REQUEST"],
        axes: Axes::Once,
        versions: &[2],
        needs: &["reauth"],
        run: |cx| Box::pin(reauth_timeout(cx)),
        ..BASE
    },
];

async fn reauth_request(c: &mut Conn) -> Result<v2::ReauthRequest, CaseError> {
    c.take("reauth_request", |e| match &e.body {
        Some(Body::ReauthRequest(r)) => Some(r.clone()),
        _ => None,
    })
    .await
}

/// Makes the server send `reauth_request` to the session of `w` as the
/// profile's `[reauth]` says, and waits for it.
async fn reauth_request_for(
    cx: &Ctx,
    c: &mut Conn,
    w: &v2::Welcome,
) -> Result<v2::ReauthRequest, CaseError> {
    let trigger = cx.profile().reauth.clone().ok_or_else(|| {
        CaseError::Unsupported(
            "the profile has no [reauth]: say how the server comes to send reauth_request (after_ms or command)".into(),
        )
    })?;
    let wait = match (trigger.after_ms, &trigger.command) {
        (Some(ms), _) => std::time::Duration::from_millis(ms) + cx.step(),
        (None, Some(cmd)) => {
            let cmd = cmd
                .replace("{session_id}", &w.session_id)
                .replace("{user}", &w.user);
            cx.note(format!("running the [reauth] command: {cmd}"));
            let status = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .env("COURIER_SESSION_ID", &w.session_id)
                .env("COURIER_USER", &w.user)
                .stdin(std::process::Stdio::null())
                .status()
                .await
                .map_err(|e| fail(format!("cannot run the [reauth] command `{cmd}`: {e}")))?;
            check!(
                status.success(),
                "the [reauth] command `{cmd}` exited with {status}"
            );
            cx.step()
        }
        (None, None) => unreachable!("the profile checks [reauth]"),
    };
    c.step = wait;
    let r = reauth_request(c).await;
    c.step = cx.step();
    r
}

async fn reauth_timeout(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    // Answered in time: the session continues past the deadline.
    let (mut ok, w) = cx.open_with("answers", &token, &["reauth"]).await?;
    check!(
        w.features.iter().any(|f| f == "reauth"),
        "reauth asked for and declared, welcome enabled {:?}",
        w.features
    );
    let r = reauth_request_for(&cx, &mut ok, &w).await?;
    let fresh = cx.token(TokenKind::Valid).await?;
    do_refresh(&mut ok, &cx, &fresh).await?.map_err(|e| {
        fail(format!(
            "refresh after reauth_request failed: {}",
            e.message
        ))
    })?;
    ok.expect_open_for(std::time::Duration::from_millis(r.deadline_ms) + cx.ms(300))
        .await?;
    // Not answered: 4301 after the deadline.
    let (mut silent, w) = cx.open_with("silent", &token, &["reauth"]).await?;
    let r = reauth_request_for(&cx, &mut silent, &w).await?;
    let closed = silent
        .expect_close(std::time::Duration::from_millis(r.deadline_ms) + cx.ms(1500))
        .await?;
    super::util::check_close(&closed, courier_protocol::close::REAUTH_TIMEOUT, true)
}

/// Sends `refresh` and returns `refreshed` or the error.
async fn do_refresh(
    c: &mut Conn,
    cx: &Ctx,
    token: &str,
) -> Result<Result<v2::Refreshed, v2::Error>, CaseError> {
    let id = cx.id("r");
    c.send_body(Body::Refresh(v2::Refresh {
        id: id.clone(),
        token: token.to_string(),
    }))
    .await?;
    reply(c, &id, "refreshed", |b| match b {
        Body::Refreshed(r) if r.id == id => Some(r.clone()),
        _ => None,
    })
    .await
}

fn expect_invalid(r: Result<v2::Refreshed, v2::Error>, what: &str) -> CaseResult {
    match r {
        Ok(_) => Err(fail(format!(
            "refresh with {what} credentials was accepted"
        ))),
        Err(e) => {
            check!(
                e.code == v2::ErrorCode::InvalidToken as i32,
                "refresh with {what} credentials answered {}, expected ERROR_CODE_INVALID_TOKEN",
                error_name(e.code)
            );
            Ok(())
        }
    }
}

async fn refresh(cx: Ctx) -> CaseResult {
    let valid = cx.token(TokenKind::Valid).await?;
    let (mut c, w) = cx.open_with("c1", &valid, &[]).await?;
    let fresh = cx.token(TokenKind::Valid).await?;
    let r = do_refresh(&mut c, &cx, &fresh).await?.map_err(|e| {
        fail(format!(
            "refresh with valid credentials failed: {} {}",
            error_name(e.code),
            e.message
        ))
    })?;
    if w.token_expires_at_ms.is_some() {
        check!(
            r.token_expires_at_ms.is_some(),
            "refreshed lacks token_expires_at_ms for expiring credentials"
        );
    }
    let invalid = cx.token(TokenKind::Invalid).await?;
    expect_invalid(do_refresh(&mut c, &cx, &invalid).await?, "invalid")?;
    if let Ok(expired) = cx.token(TokenKind::Expired).await {
        expect_invalid(do_refresh(&mut c, &cx, &expired).await?, "expired")?;
    }
    // The previous credentials stay in force: the session still works.
    sync(&mut c, 42).await?;
    subscribe(&mut c, &cx, &cx.channel("after-refresh"), None).await?;
    Ok(())
}

async fn refresh_same_user(cx: Ctx) -> CaseResult {
    let other = cx.token(TokenKind::OtherUser).await?;
    let (mut c, _) = cx.open("c1").await?;
    expect_invalid(do_refresh(&mut c, &cx, &other).await?, "another user's")?;
    sync(&mut c, 43).await
}

fn check_forbidden(r: Result<(), v2::Error>, op: &str, id_expected: bool, ch: &str) -> CaseResult {
    let e = match r {
        Ok(()) => {
            return Err(fail(format!(
                "{op} on the forbidden channel {ch} succeeded with wrong-scope credentials"
            )))
        }
        Err(e) => e,
    };
    check!(
        e.code == v2::ErrorCode::Forbidden as i32,
        "{op} on {ch} denied with {}, expected ERROR_CODE_FORBIDDEN",
        error_name(e.code)
    );
    check!(
        e.channel == ch,
        "the FORBIDDEN error names channel {:?}, expected {ch:?}",
        e.channel
    );
    if id_expected {
        check!(
            !e.id.is_empty(),
            "the FORBIDDEN error carries no request id"
        );
    }
    Ok(())
}

async fn denial_is_error(cx: Ctx) -> CaseResult {
    let forbidden = cx
        .profile()
        .channels
        .forbidden
        .clone()
        .expect("needs forbidden");
    let scoped = cx.token(TokenKind::WrongScope).await?;
    let (mut c, _) = cx.open_with("c1", &scoped, &[]).await?;
    check_forbidden(
        try_subscribe(&mut c, &cx, &forbidden, None)
            .await?
            .map(|_| ()),
        "subscribe",
        true,
        &forbidden,
    )?;
    check_forbidden(
        try_publish(&mut c, &forbidden, &cx.id("p"), serde_json::json!(1))
            .await?
            .map(|_| ()),
        "publish",
        true,
        &forbidden,
    )?;
    sync(&mut c, 44).await?;
    subscribe(&mut c, &cx, &cx.channel("open"), None).await?;
    Ok(())
}

async fn per_operation(cx: Ctx) -> CaseResult {
    let forbidden = cx
        .profile()
        .channels
        .forbidden
        .clone()
        .expect("needs forbidden");
    let scoped = cx.token(TokenKind::WrongScope).await?;
    let valid = cx.token(TokenKind::Valid).await?;
    let (mut c, _) = cx.open_with("c1", &scoped, &[]).await?;
    check_forbidden(
        try_subscribe(&mut c, &cx, &forbidden, None)
            .await?
            .map(|_| ()),
        "subscribe",
        true,
        &forbidden,
    )?;
    do_refresh(&mut c, &cx, &valid).await?.map_err(|e| {
        fail(format!(
            "refresh with valid credentials failed: {}",
            e.message
        ))
    })?;
    let r = try_subscribe(&mut c, &cx, &forbidden, None).await?;
    check!(
        r.is_ok(),
        "after refreshing to credentials with the scope, subscribe to {forbidden} is still denied"
    );
    do_refresh(&mut c, &cx, &scoped).await?.map_err(|e| {
        fail(format!(
            "refresh back to wrong-scope credentials failed: {}",
            e.message
        ))
    })?;
    check_forbidden(
        try_publish(&mut c, &forbidden, &cx.id("p"), serde_json::json!(1))
            .await?
            .map(|_| ()),
        "publish after refresh to narrower credentials",
        true,
        &forbidden,
    )?;
    Ok(())
}
