//! The reconnection policy, without I/O: which reaction a close calls for
//! (CLOSE-RANGES), how long to wait (CLIENT-BACKOFF-JITTER, CLOSE-RETRY-AFTER)
//! and when to give up.

use std::time::Duration;

use courier_protocol::close::{self, Reaction};

/// How a connection ended, as far as the reconnection policy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code that decides the reaction: the `disconnect` notice's
    /// code when one arrived (CLOSE-NOTICE-WINS), else the close frame's,
    /// else 1006 (lost without a close frame).
    pub code: u16,
    /// The reason text, for the application.
    pub reason: String,
    /// `disconnect.retry_after_ms` (v2), when the server sent one.
    pub retry_after: Option<Duration>,
    /// Whether the session had been open for at least
    /// `heartbeat_interval_ms`: only a stable session resets the backoff.
    pub stable: bool,
}

impl CloseInfo {
    /// A connection lost without any close frame (1006).
    pub fn abnormal(reason: impl Into<String>) -> Self {
        CloseInfo {
            code: close::ABNORMAL,
            reason: reason.into(),
            retry_after: None,
            stable: false,
        }
    }
}

/// What to do after a close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Wait `delay`, then connect again. When `refresh_credentials` is set,
    /// ask the token provider for new credentials first (CLOSE-REFRESH).
    Reconnect {
        /// How long to wait before the attempt.
        delay: Duration,
        /// Obtain new credentials before connecting.
        refresh_credentials: bool,
        /// The attempt number about to be made (1 for the first retry).
        attempt: u32,
    },
    /// Do not reconnect (CLOSE-TERMINAL-NO-RECONNECT).
    Terminal,
    /// Do not reconnect: the configured number of attempts is used up.
    GiveUp {
        /// How many attempts were made.
        attempts: u32,
    },
}

/// The reaction a close code calls for (CLOSE-RANGES), as
/// [`courier_protocol::close::reaction`] defines it; 1002 and 1007 are
/// terminal whatever that table says.
pub fn reaction(code: u16) -> Reaction {
    let other = matches!(code, 1011..=1014 | 3000..=3999 | 4400..=4999);
    match code {
        1002 | 1007 => Reaction::Terminal,
        _ if other && fault!(TerminalOnOtherCodes) => Reaction::Terminal,
        _ => close::reaction(code),
    }
}

/// Exponential backoff with full jitter and a cap (CLIENT-BACKOFF-JITTER).
///
/// `failures` counts consecutive attempts since the last stable session.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    max_attempts: Option<u32>,
    reconnect_now_max: Duration,
    failures: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A policy with the given base, cap, attempt limit (None: unlimited)
    /// and reconnect-now window (CLOSE-RECONNECT-NOW: 1 s in the spec).
    pub fn new(
        base: Duration,
        cap: Duration,
        max_attempts: Option<u32>,
        reconnect_now_max: Duration,
    ) -> Self {
        Backoff {
            base,
            cap,
            max_attempts,
            reconnect_now_max,
            failures: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// Uses a seeded random source (tests).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// Consecutive failed attempts so far (the `n` of the spec).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The upper bound of the jittered delay for `n` failures:
    /// min(cap, base × 2^n).
    pub fn window(&self, n: u32) -> Duration {
        let factor = 1u64.checked_shl(n.min(62)).unwrap_or(u64::MAX);
        let ms = (self.base.as_millis() as u64).saturating_mul(factor);
        Duration::from_millis(ms).min(self.cap)
    }

    fn jitter(&mut self, upper: Duration) -> Duration {
        if fault!(NoJitter) {
            return upper;
        }
        let ms = upper.as_millis() as u64;
        Duration::from_millis(self.rng.u64(0..=ms))
    }

    /// Decides what follows a close.
    pub fn after_close(&mut self, close: &CloseInfo) -> Next {
        if close.stable {
            self.failures = 0;
        }
        let reaction = reaction(close.code);
        if reaction == Reaction::Terminal && !fault!(ReconnectAfterTerminal) {
            return Next::Terminal;
        }
        if (4100..=4199).contains(&close.code) && fault!(BackoffAtCap) {
            self.failures = self.failures.max(62);
        }
        self.next_attempt(reaction, close.retry_after)
    }

    /// Decides what follows a failed connection attempt (refused, timed
    /// out, handshake error): backoff, as for a 1006.
    pub fn after_connect_failure(&mut self) -> Next {
        self.next_attempt(Reaction::BackoffResume, None)
    }

    fn next_attempt(&mut self, reaction: Reaction, retry_after: Option<Duration>) -> Next {
        if let Some(max) = self.max_attempts {
            if self.failures >= max {
                return Next::GiveUp {
                    attempts: self.failures,
                };
            }
        }
        let n = self.failures;
        let retry_after = retry_after.filter(|_| !fault!(IgnoreRetryAfter));
        let delay = match (retry_after, reaction) {
            // CLOSE-RETRY-AFTER: exactly the server's hint.
            (Some(d), _) => d,
            // CLOSE-RECONNECT-NOW: 0–1 s on the first attempt, then the backoff schedule.
            (None, Reaction::ReconnectResume) if fault!(ReconnectNowWaits) => self.cap,
            (None, Reaction::ReconnectResume) if n == 0 => {
                let max = self.reconnect_now_max;
                self.jitter(max)
            }
            // CLOSE-REFRESH: new credentials make an immediate attempt
            // reasonable; a recurring 43xx is subject to backoff.
            (None, Reaction::RefreshCredentials) if n == 0 => Duration::ZERO,
            _ => {
                let w = self.window(n);
                self.jitter(w)
            }
        };
        self.failures = self.failures.saturating_add(1);
        Next::Reconnect {
            delay,
            refresh_credentials: reaction == Reaction::RefreshCredentials,
            attempt: self.failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max: Option<u32>) -> Backoff {
        Backoff::new(
            Duration::from_millis(1000),
            Duration::from_millis(30_000),
            max,
            Duration::from_millis(1000),
        )
        .with_seed(7)
    }

    fn close(code: u16) -> CloseInfo {
        CloseInfo {
            code,
            reason: String::new(),
            retry_after: None,
            stable: false,
        }
    }

    #[test]
    fn window_doubles_then_caps() {
        let b = policy(None);
        let got: Vec<u128> = (0..8).map(|n| b.window(n).as_millis()).collect();
        assert_eq!(got, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        assert_eq!(b.window(200), Duration::from_millis(30_000));
    }

    #[test]
    fn delays_stay_within_the_jitter_window_and_spread() {
        let mut b = policy(None);
        let mut delays = Vec::new();
        for n in 0..12u32 {
            let Next::Reconnect {
                delay,
                attempt,
                refresh_credentials,
            } = b.after_close(&close(4100))
            else {
                panic!("4100 must reconnect")
            };
            assert_eq!(attempt, n + 1);
            assert!(!refresh_credentials);
            assert!(
                delay <= b.window(n),
                "attempt {n}: {delay:?} > {:?}",
                b.window(n)
            );
            delays.push(delay);
        }
        // Full jitter: the capped attempts do not all land on the cap.
        let capped: Vec<_> = delays[5..].iter().collect();
        assert!(
            capped.iter().any(|d| **d < Duration::from_millis(29_000)),
            "{delays:?}"
        );
    }

    #[test]
    fn terminal_codes_never_reconnect() {
        for code in [
            1002, 1007, 1009, 4000, 4001, 4002, 4003, 4004, 4005, 4006, 4050, 4099,
        ] {
            assert_eq!(
                policy(None).after_close(&close(code)),
                Next::Terminal,
                "code {code}"
            );
        }
    }

    #[test]
    fn codes_outside_the_ranges_back_off() {
        for code in [1000, 1006, 1011, 4400, 4999] {
            let next = policy(None).after_close(&close(code));
            assert!(
                matches!(
                    next,
                    Next::Reconnect {
                        refresh_credentials: false,
                        ..
                    }
                ),
                "code {code}: {next:?}"
            );
        }
    }

    #[test]
    fn reconnect_now_is_short_first_then_backs_off() {
        let mut b = policy(None);
        for code in [1001, 4200, 4201] {
            let mut b2 = policy(None);
            let Next::Reconnect { delay, .. } = b2.after_close(&close(code)) else {
                panic!()
            };
            assert!(delay <= Duration::from_millis(1000));
        }
        b.after_close(&close(4200));
        b.after_close(&close(4200));
        assert_eq!(b.failures(), 2);
    }

    #[test]
    fn credentials_range_asks_for_a_refresh() {
        let mut b = policy(None);
        let next = b.after_close(&close(4300));
        assert_eq!(
            next,
            Next::Reconnect {
                delay: Duration::ZERO,
                refresh_credentials: true,
                attempt: 1
            }
        );
        let Next::Reconnect {
            refresh_credentials,
            delay,
            ..
        } = b.after_close(&close(4301))
        else {
            panic!()
        };
        assert!(refresh_credentials);
        assert!(delay <= Duration::from_millis(2000));
    }

    #[test]
    fn retry_after_overrides_the_computed_delay() {
        let mut b = policy(None);
        let mut c = close(4101);
        c.retry_after = Some(Duration::from_millis(1234));
        for _ in 0..5 {
            let Next::Reconnect { delay, .. } = b.after_close(&c) else {
                panic!()
            };
            assert_eq!(delay, Duration::from_millis(1234));
        }
    }

    #[test]
    fn only_a_stable_session_resets_the_counter() {
        let mut b = policy(None);
        for _ in 0..3 {
            b.after_close(&close(1006));
        }
        assert_eq!(b.failures(), 3);
        b.after_close(&close(1006));
        assert_eq!(b.failures(), 4);
        let mut stable = close(1006);
        stable.stable = true;
        let Next::Reconnect { attempt, delay, .. } = b.after_close(&stable) else {
            panic!()
        };
        assert_eq!(attempt, 1);
        assert!(delay <= Duration::from_millis(1000));
    }

    #[test]
    fn max_attempts_gives_up() {
        let mut b = policy(Some(3));
        for _ in 0..3 {
            assert!(matches!(b.after_connect_failure(), Next::Reconnect { .. }));
        }
        assert_eq!(b.after_connect_failure(), Next::GiveUp { attempts: 3 });
        assert_eq!(b.after_close(&close(4100)), Next::GiveUp { attempts: 3 });
    }
}
