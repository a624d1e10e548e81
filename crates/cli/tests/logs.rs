//! `courier serve` logs as operators meet them: plain text in a pipe or a
//! file, colours only on a real terminal (a pty from util-linux `script`)
//! and never with `NO_COLOR`, and one JSON object per line with
//! `--log-format json` / `COURIER_LOG_FORMAT=json`.

use std::process::{Command, Output, Stdio};

const ESC: &str = "\x1b[";

/// Runs `courier serve` on a free port for a moment, then SIGINT (from
/// `timeout`): the "shutting down" line is an info-level log line.
fn serve_briefly(extra: &str) -> String {
    format!(
        "timeout -s INT 2 {} serve --listen 127.0.0.1:0 {extra}",
        env!("CARGO_BIN_EXE_courier")
    )
}

fn sh(cmd: &str, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .env_remove("NO_COLOR");
    c.env_remove("COURIER_LOG_FORMAT").env_remove("COURIER_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("sh runs")
}

/// The same command on a pseudo-terminal: `script` copies what the program
/// wrote to its terminal to our stdout.
fn on_terminal(cmd: &str, env: &[(&str, &str)]) -> String {
    let out = sh(
        &format!("script -qec '{cmd}' /dev/null"),
        &[env, &[("TERM", "xterm")]].concat(),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn logs_in_a_pipe_have_no_colour_codes() {
    let out = sh(&serve_briefly(""), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(!stderr.contains(ESC), "ANSI codes in a pipe: {stderr:?}");
}

#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color_is_set() {
    let tty = on_terminal(&serve_briefly(""), &[]);
    assert!(tty.contains("shutting down"), "{tty:?}");
    assert!(tty.contains(ESC), "no colour on a terminal: {tty:?}");

    let tty = on_terminal(&serve_briefly(""), &[("NO_COLOR", "1")]);
    assert!(tty.contains("shutting down"), "{tty:?}");
    assert!(!tty.contains(ESC), "colour despite NO_COLOR: {tty:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    for (flag, env) in [
        ("--log-format json", vec![]),
        ("", vec![("COURIER_LOG_FORMAT", "json")]),
    ] {
        let out = sh(&serve_briefly(flag), &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<serde_json::Value> = stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect();
        let shutdown = lines
            .iter()
            .find(|l| l["fields"]["message"] == "shutting down")
            .unwrap_or_else(|| panic!("no shutdown line in {stderr}"));
        assert_eq!(shutdown["level"], "INFO", "{shutdown}");
        assert!(shutdown["timestamp"].is_string(), "{shutdown}");
        // Colour never goes into JSON, even on a terminal.
        let tty = on_terminal(&serve_briefly(flag), &env);
        assert!(!tty.contains(ESC), "{tty:?}");
        assert!(tty.contains("\"shutting down\""), "{tty:?}");
    }
}

#[test]
fn a_bad_log_format_is_a_usage_error() {
    let out = sh(&serve_briefly("--log-format yaml"), &[]);
    assert_eq!(out.status.code(), Some(2), "clap's usage exit code");
    let out = sh(&serve_briefly(""), &[("COURIER_LOG_FORMAT", "yaml")]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("COURIER_LOG_FORMAT=yaml"), "{stderr}");
}
