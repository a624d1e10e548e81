//! What the suite refuses to send: a client envelope carrying a value the
//! spec forbids (an integer over 2^53−1, ENC-INT53). Such a value can only
//! come from the server's own numbers (a position minus a count, say), so a
//! case that would send one reports that the server's numbering made it
//! impossible instead of sending a frame that rightly closes with 4000.

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;

/// 2^53 − 1, the largest integer every encoding carries exactly.
pub const MAX_SAFE: u64 = (1 << 53) - 1;

/// Describes the first forbidden value of `env`, if any.
pub fn forbidden_content(env: &v2::Envelope) -> Option<String> {
    let big = |field: &str, v: u64| (v > MAX_SAFE).then(|| format!("{field} = {v} (over 2^53-1)"));
    match env.body.as_ref()? {
        Body::Subscribe(s) => s
            .resume
            .as_ref()
            .and_then(|r| big("subscribe.resume.seq", r.seq)),
        Body::Ping(p) => big("ping.ts", p.ts),
        Body::Pong(p) => big("pong.ts", p.ts),
        Body::Batch(b) => b.envelopes.iter().find_map(forbidden_content),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_underflowed_resume_seq_is_refused() {
        let sub = |seq| v2::Envelope {
            body: Some(Body::Subscribe(v2::Subscribe {
                id: "s".into(),
                channel: "c".into(),
                resume: Some(v2::StreamPosition {
                    epoch: "e".into(),
                    seq,
                }),
            })),
        };
        assert!(forbidden_content(&sub(MAX_SAFE)).is_none());
        let msg = forbidden_content(&sub(3u64.wrapping_sub(51))).expect("refused");
        assert!(
            msg.contains("subscribe.resume.seq = 18446744073709551568"),
            "{msg}"
        );
        let batch = v2::Envelope {
            body: Some(Body::Batch(v2::Batch {
                envelopes: vec![sub(1 << 60)],
            })),
        };
        assert!(forbidden_content(&batch).is_some());
    }
}
