//! The HTML report: one self-contained file (inline CSS, no scripts) with
//! the summary, every case's result, the text of the requirements it checks,
//! and for failures and warnings the decoded transcript of frames.

use std::collections::HashMap;
use std::fmt::Write;

use super::junit::escape;
use super::Report;
use crate::runner::Outcome;

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1d1d1f}
h1{font-size:1.5em}table{border-collapse:collapse;width:100%}td,th{padding:.3em .5em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.o{font-weight:600;white-space:nowrap}.pass{color:#18794e}.fail,.unexpected-pass{color:#c4122f}.warn{color:#a35200}.unsupported,.skipped,.expected-fail{color:#666}
.sum span{display:inline-block;margin-right:1.2em}code{font:12px ui-monospace,monospace}.req{color:#444;font-size:12px;margin:.2em 0}
details{margin:.3em 0}pre{background:#f6f6f8;padding:.6em;overflow-x:auto;font:12px/1.35 ui-monospace,monospace;white-space:pre-wrap}
.send{color:#0b5cad}.recv{color:#1d1d1f}.note{color:#777;font-style:italic}.msg{margin:.2em 0}";

impl Report {
    /// The report as one self-contained HTML page.
    pub fn to_html(&self) -> String {
        let reqs: HashMap<String, crate::spec::Requirement> = crate::spec::requirements()
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Courier conformance: {}</title><style>{CSS}</style></head><body>\n",
            escape(&self.target)
        );
        let verdict = if self.passed {
            "<span class=\"o pass\">PASS</span>"
        } else {
            "<span class=\"o fail\">FAIL</span>"
        };
        let _ = writeln!(
            h,
            "<h1>Courier conformance report {verdict}</h1><p>Target <code>{}</code>, suite {}, {} case instances in {:.1} s{}.</p>",
            escape(&self.target),
            escape(&self.suite_version),
            self.results.len(),
            self.duration_ms as f64 / 1000.0,
            if self.strict { ", strict (SHOULD failures fail)" } else { "" }
        );
        h.push_str("<p class=\"sum\">");
        for (name, n) in &self.summary {
            let _ = write!(h, "<span class=\"{name}\">{name}: <b>{n}</b></span>");
        }
        h.push_str("</p>\n<table><tr><th>Result</th><th>Case</th><th>Level</th><th>Checks</th><th>ms</th></tr>\n");
        // Problems first, so a failing report opens on what matters.
        let mut order: Vec<&crate::runner::CaseResult> = self.results.iter().collect();
        order.sort_by_key(|r| match r.outcome {
            Outcome::Fail | Outcome::UnexpectedPass => 0,
            Outcome::Warn => 1,
            Outcome::ExpectedFail => 2,
            _ => 3,
        });
        for r in order {
            let o = r.outcome.as_str();
            let _ = write!(
                h,
                "<tr><td class=\"o {o}\">{o}</td><td><code>{}</code><br>{}",
                escape(&r.id),
                escape(&r.title)
            );
            if let Some(m) = &r.message {
                let _ = write!(h, "<div class=\"msg {o}\">{}</div>", escape(m));
            }
            if let Some(reason) = &r.expected_failure {
                let _ = write!(
                    h,
                    "<div class=\"req\">expected-failures entry: {}</div>",
                    escape(reason)
                );
            }
            if !r.transcript.is_empty()
                && !matches!(
                    r.outcome,
                    Outcome::Pass | Outcome::Unsupported | Outcome::Skipped
                )
            {
                let _ = write!(
                    h,
                    "<details{}><summary>transcript ({} entries)</summary><pre>",
                    if r.outcome.is_fatal() { " open" } else { "" },
                    r.transcript.len()
                );
                for e in &r.transcript {
                    let arrow = match e.dir {
                        "send" => "→",
                        "recv" => "←",
                        _ => "·",
                    };
                    let _ = writeln!(
                        h,
                        "<span class=\"{}\">{:>6} ms {:<6} {arrow} {:<9} {}</span>",
                        e.dir,
                        e.t_ms,
                        escape(&e.conn),
                        e.kind,
                        escape(&e.text)
                    );
                }
                h.push_str("</pre></details>");
            }
            let _ = write!(h, "</td><td>{}</td><td>", r.level);
            for id in &r.requirements {
                match reqs.get(id) {
                    Some(req) => {
                        let _ = write!(
                            h,
                            "<div class=\"req\"><code>{}</code> ({}, {}) {}</div>",
                            escape(id),
                            escape(&req.keyword),
                            escape(&req.file),
                            escape(&req.text)
                        );
                    }
                    None => {
                        let _ = write!(h, "<div class=\"req\"><code>{}</code></div>", escape(id));
                    }
                }
            }
            let _ = writeln!(h, "</td><td>{}</td></tr>", r.duration_ms);
        }
        h.push_str("</table>\n</body></html>\n");
        h
    }
}
