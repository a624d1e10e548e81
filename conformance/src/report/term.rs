//! Terminal output: one live line per finished case (failures and warnings
//! with their message) and a closing summary.

use std::io::Write;
use std::sync::Mutex;

use super::Report;
use crate::runner::{CaseResult, Outcome, Progress};

/// Prints progress lines to stderr as cases finish.
pub struct TermProgress {
    verbose: bool,
    lock: Mutex<()>,
}

impl TermProgress {
    /// `verbose` prints passing cases too; otherwise only a counter line.
    pub fn new(verbose: bool) -> TermProgress {
        TermProgress {
            verbose,
            lock: Mutex::new(()),
        }
    }
}

fn mark(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS ",
        Outcome::Fail => "FAIL ",
        Outcome::Warn => "WARN ",
        Outcome::Unsupported => "UNSUP",
        Outcome::Skipped => "SKIP ",
        Outcome::ExpectedFail => "XFAIL",
        Outcome::UnexpectedPass => "XPASS",
    }
}

impl Progress for TermProgress {
    fn finished(&self, r: &CaseResult, done: usize, total: usize) {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        let noteworthy = matches!(
            r.outcome,
            Outcome::Fail | Outcome::Warn | Outcome::UnexpectedPass
        );
        if self.verbose || noteworthy {
            let _ = writeln!(
                err,
                "[{done:>3}/{total}] {} {} ({} ms)",
                mark(r.outcome),
                r.id,
                r.duration_ms
            );
            if noteworthy {
                if let Some(m) = &r.message {
                    let _ = writeln!(
                        err,
                        "          {} {}: {m}",
                        r.level,
                        r.requirements.join(", ")
                    );
                }
            }
        } else if done == total || done.is_multiple_of(10) {
            let _ = writeln!(err, "[{done:>3}/{total}] ...");
        }
    }
}

/// Transcript entries shown per failing case in the terminal.
const SHOWN_FRAMES: usize = 8;

/// The last frames a failing case exchanged, one line each, shortened.
fn last_frames(r: &CaseResult) -> String {
    if r.transcript.is_empty() {
        return String::new();
    }
    let from = r.transcript.len().saturating_sub(SHOWN_FRAMES);
    let mut s = format!(
        "        last frames ({} of {}; the JSON/HTML reports have all):\n",
        r.transcript.len() - from,
        r.transcript.len()
    );
    for e in &r.transcript[from..] {
        let mut text: String = e.text.chars().take(140).collect();
        if text.len() < e.text.len() {
            text.push('…');
        }
        s.push_str(&format!(
            "          {:>6} ms {:<8} {:<4} {:<9} {text}\n",
            e.t_ms, e.conn, e.dir, e.kind
        ));
    }
    s
}

impl Report {
    /// The closing summary, as printed by `courier conform`.
    pub fn summary_text(&self) -> String {
        let mut s = String::new();
        let fatal: Vec<&CaseResult> = self
            .results
            .iter()
            .filter(|r| r.outcome.is_fatal() || r.outcome == Outcome::Warn)
            .collect();
        if !fatal.is_empty() {
            s.push_str("\nNot passing:\n");
            for r in fatal {
                s.push_str(&format!(
                    "  {} {:<44} {} [{}]\n",
                    mark(r.outcome),
                    r.id,
                    r.level,
                    r.requirements.join(", ")
                ));
                if let Some(m) = &r.message {
                    s.push_str(&format!("        {m}\n"));
                }
                if r.outcome != Outcome::UnexpectedPass {
                    s.push_str(&last_frames(r));
                }
            }
        }
        let c = |o| self.count(o);
        s.push_str(&format!(
            "\ncourier conform: {} cases against {} in {:.1} s: {} passed, {} failed, {} warned, {} unsupported, {} skipped, {} expected failures, {} unexpected passes\n",
            self.results.len(),
            self.target,
            self.duration_ms as f64 / 1000.0,
            c(Outcome::Pass),
            c(Outcome::Fail),
            c(Outcome::Warn),
            c(Outcome::Unsupported),
            c(Outcome::Skipped),
            c(Outcome::ExpectedFail),
            c(Outcome::UnexpectedPass),
        ));
        s.push_str(if self.passed {
            "result: PASS (every MUST requirement checked holds)\n"
        } else {
            "result: FAIL\n"
        });
        s
    }
}
