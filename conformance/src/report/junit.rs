//! JUnit XML, the format CI systems (GitHub Actions, GitLab, Jenkins) read:
//! one `<testcase>` per case instance, `<failure>` for fatal results,
//! `<skipped>` for unsupported, skipped and expected failures; warnings pass
//! with their message in `<system-out>`.

use std::fmt::Write;

use super::Report;
use crate::runner::Outcome;

/// Escapes text for XML attributes and content, dropping characters XML 1.0 forbids.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

impl Report {
    /// The report as JUnit XML.
    pub fn to_junit(&self) -> String {
        let failures = self.results.iter().filter(|r| r.outcome.is_fatal()).count();
        let skipped = self
            .results
            .iter()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Outcome::Unsupported | Outcome::Skipped | Outcome::ExpectedFail
                )
            })
            .count();
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            x,
            "<testsuites name=\"courier-conformance\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">",
            self.results.len(),
            self.duration_ms as f64 / 1000.0
        );
        let _ = writeln!(
            x,
            "  <testsuite name=\"courier conformance: {}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">",
            escape(&self.target),
            self.results.len(),
            self.duration_ms as f64 / 1000.0
        );
        for r in &self.results {
            let class = format!("courier.{}", r.case.split('.').next().unwrap_or("case"));
            let _ = write!(
                x,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
                escape(&class),
                escape(&r.id),
                r.duration_ms as f64 / 1000.0
            );
            let msg = escape(r.message.as_deref().unwrap_or(""));
            let reqs = r.requirements.join(", ");
            match r.outcome {
                Outcome::Fail | Outcome::UnexpectedPass => {
                    let _ = write!(
                        x,
                        "\n      <failure message=\"{msg}\" type=\"{}\">{} {} ({reqs}): {msg}\n",
                        r.outcome.as_str(),
                        r.level,
                        escape(&r.title)
                    );
                    for e in r.transcript.iter().take(200) {
                        let _ = writeln!(
                            x,
                            "{:>6} ms {:<6} {:<4} {}",
                            e.t_ms,
                            escape(&e.conn),
                            e.dir,
                            escape(&e.text)
                        );
                    }
                    x.push_str("      </failure>\n    ");
                }
                Outcome::Unsupported | Outcome::Skipped | Outcome::ExpectedFail => {
                    let _ = write!(
                        x,
                        "\n      <skipped message=\"{}: {msg}\"/>\n    ",
                        r.outcome.as_str()
                    );
                }
                Outcome::Warn => {
                    let _ = write!(
                        x,
                        "\n      <system-out>warn ({} {reqs}): {msg}</system-out>\n    ",
                        r.level
                    );
                }
                Outcome::Pass => {}
            }
            x.push_str("</testcase>\n");
        }
        x.push_str("  </testsuite>\n</testsuites>\n");
        x
    }
}
