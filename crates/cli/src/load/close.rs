//! What `courier load` tells the user when the server closes its publisher:
//! the close code, its name, what it means for a load run and which setting
//! to change, so that a limit hit reads as a limit, not as a hang.

use courier_protocol::close;

/// How the server ended the publisher's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Closed {
    /// The close code (from the `disconnect` notice, else the close frame).
    pub code: u16,
    /// The server's reason text.
    pub reason: String,
}

impl Closed {
    /// One line for the report: `4101 CLOSE_CODE_RATE_LIMITED (rate limit exceeded…)`.
    pub fn summary(&self) -> String {
        let name = close::name(self.code).unwrap_or("not a Courier close code");
        if self.reason.is_empty() {
            format!("{} {name}", self.code)
        } else {
            format!("{} {name} ({})", self.code, self.reason)
        }
    }

    /// What the code means for a load run and what to change.
    pub fn hint(&self) -> &'static str {
        match self.code {
            close::RATE_LIMITED => {
                "the publisher sent more than the server allows one connection \
                 (`max_messages_per_second`, 100/s by default, bursts up to `max_burst`, 200). \
                 Publish at a fixed rate below the limit (`--rate 90`), or raise \
                 `max_messages_per_second` and `max_burst` in the server's configuration \
                 (docs/server.md, e.g. COURIER_MAX_MESSAGES_PER_SECOND=1000000 \
                 COURIER_MAX_BURST=1000000 courier serve)"
            }
            close::SLOW_CONSUMER => {
                "the connection's send queue overflowed (`send_queue_frames`): \
                 fewer publishes in flight (`--window`) or a larger queue on the server"
            }
            close::AUTH_FAILED | close::TOKEN_EXPIRED => {
                "the server did not accept the credentials: pass a valid token with --token"
            }
            close::FORBIDDEN => "this connection may not publish here: check --channel and --token",
            close::OVERLOADED => {
                "the server is over capacity: fewer subscribers or a bigger server"
            }
            close::GOING_AWAY => "the server shut down during the run",
            close::MESSAGE_TOO_BIG => {
                "a publish exceeded the server's frame limit: a smaller --payload-size"
            }
            _ => "see docs/spec/close-codes.md for what the code means",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_names_the_code_and_the_settings() {
        let c = Closed {
            code: close::RATE_LIMITED,
            reason: "rate limit exceeded".into(),
        };
        assert_eq!(
            c.summary(),
            "4101 CLOSE_CODE_RATE_LIMITED (rate limit exceeded)"
        );
        assert!(c.hint().contains("max_messages_per_second"));
        assert!(c.hint().contains("--rate"));
    }

    #[test]
    fn unknown_codes_still_read() {
        let c = Closed {
            code: 4999,
            reason: String::new(),
        };
        assert_eq!(c.summary(), "4999 not a Courier close code");
    }
}
