//! The reaction to each close-code range (close-codes.md §2–4): terminal
//! codes stop the client, a `disconnect` notice wins over the close that
//! follows.

use futures_util::future::join_all;

use super::BASE;
use crate::case::{fail, Axes, CaseError};
use crate::check;
use crate::client::cases::session::no_reconnect;
use crate::client::{ClientCaseDef, ClientCtx};

pub(crate) const CASES: &[ClientCaseDef] = &[
    ClientCaseDef {
        id: "client.close.terminal",
        title: "After 1002, 1007, 1009 or a 4000-4099 close the client reports a terminal error and never reconnects",
        requirements: &["CLOSE-TERMINAL-NO-RECONNECT", "CLOSE-RANGES"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(terminal(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.close.notice-wins",
        title: "A disconnect notice with a terminal code decides, though the link then drops without a close frame",
        requirements: &["CLOSE-NOTICE-WINS"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(notice_wins(cx)),
        ..BASE
    },
];

/// Terminal codes, one client each.
const TERMINAL: [u16; 8] = [1002, 1007, 1009, 4000, 4001, 4004, 4006, 4099];

async fn terminal(cx: ClientCtx) -> Result<(), CaseError> {
    let runs = TERMINAL.map(|code| {
        let cx = cx.clone();
        async move {
            let mut s = cx.session().await?;
            cx.note(format!("closing with {code}"));
            s.peer.close(code, "conformance: terminal").await;
            let t = s
                .driver
                .wait(&format!("a terminal event after {code}"), cx.step(), |e| {
                    e.kind() == "terminal"
                })
                .await?;
            check!(
                t.v["code"] == code,
                "after a close with {code} the terminal event carries code {}",
                t.v["code"]
            );
            no_reconnect(&mut s.server, cx.ms(1200), &format!("a close with {code}")).await
        }
    });
    let errors: Vec<String> = join_all(runs)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Err(CaseError::Fail(m)) => Some(m),
            _ => None,
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("; ")))
    }
}

async fn notice_wins(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    cx.note("disconnect 4004, then the link drops without a close frame (1006)");
    s.peer
        .send(courier_protocol::v2::envelope::Body::Disconnect(
            courier_protocol::v2::Disconnect {
                code: 4004,
                reason: "authentication failed".into(),
                retry_after_ms: None,
            },
        ))
        .await?;
    s.peer.drop_link().await;
    let t = s
        .driver
        .wait("a terminal event", cx.step(), |e| e.kind() == "terminal")
        .await?;
    check!(
        t.v["code"] == 4004,
        "the terminal event carries code {}; the notice said 4004",
        t.v["code"]
    );
    no_reconnect(
        &mut s.server,
        cx.ms(1200),
        "a 4004 notice followed by a lost link",
    )
    .await
}
