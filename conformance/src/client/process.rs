//! The driver process of the client under test (docs/conformance-client.md):
//! started once per case instance, fed commands as JSON lines on stdin; its
//! events (JSON lines on stdout) are recorded in the transcript and kept
//! in order for the case to wait on and inspect. Its stderr goes to the
//! transcript as notes.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::case::{fail, CaseError};
use crate::transcript::Transcript;

/// One event from the driver, with its arrival time.
#[derive(Debug, Clone)]
pub struct Event {
    /// When it was read.
    pub at: Instant,
    /// The JSON object.
    pub v: Value,
}

impl Event {
    /// The `event` field.
    pub fn kind(&self) -> &str {
        self.v["event"].as_str().unwrap_or("")
    }
}

/// A running driver.
pub struct DriverProc {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::UnboundedReceiver<Event>,
    seen: Vec<Event>,
    next_ref: u64,
    exited: bool,
    transcript: Arc<Transcript>,
    /// How long one expected event may take.
    pub step: Duration,
}

/// The label of driver lines in transcripts.
pub const LABEL: &str = "driver";

impl DriverProc {
    /// Starts `command` and waits for its `ready` event.
    pub async fn spawn(
        command: &[String],
        env: &[(String, String)],
        case_id: &str,
        transcript: Arc<Transcript>,
        step: Duration,
        ready_within: Duration,
    ) -> Result<DriverProc, CaseError> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| CaseError::Unsupported("no driver command given".into()))?;
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().cloned())
            .env("COURIER_CONFORM_CASE", case_id)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                fail(format!(
                    "cannot start the driver `{}`: {e}",
                    command.join(" ")
                ))
            })?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::unbounded_channel();
        let t = transcript.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim().is_empty() {
                    continue;
                }
                t.record(LABEL, "recv", "text", line.clone());
                let v = match serde_json::from_str::<Value>(&line) {
                    Ok(v) if v.is_object() => v,
                    _ => json!({"event": "invalid", "line": line}),
                };
                if tx
                    .send(Event {
                        at: Instant::now(),
                        v,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });
        let t = transcript.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                t.record(LABEL, "note", "note", format!("stderr: {line}"));
            }
        });
        let mut d = DriverProc {
            child,
            stdin,
            rx,
            seen: Vec::new(),
            next_ref: 1,
            exited: false,
            transcript,
            step,
        };
        d.wait("the driver's `ready` event", ready_within, |e| {
            e.kind() == "ready"
        })
        .await?;
        Ok(d)
    }

    /// Sends a command; returns its `ref`.
    pub async fn send(&mut self, mut cmd: Value) -> Result<u64, CaseError> {
        let r = self.next_ref;
        self.next_ref += 1;
        if cmd["cmd"] != "exit" {
            cmd["ref"] = json!(r);
        }
        let line = cmd.to_string();
        self.transcript.record(LABEL, "send", "text", line.clone());
        let write = async {
            self.stdin.write_all(line.as_bytes()).await?;
            self.stdin.write_all(b"\n").await?;
            self.stdin.flush().await
        };
        write.await.map_err(|e| {
            fail(format!(
                "cannot write to the driver: {e}{}",
                self.exit_note()
            ))
        })?;
        Ok(r)
    }

    /// Waits for the `result` of command `r` within `d`.
    pub async fn result(&mut self, r: u64, d: Duration) -> Result<Value, CaseError> {
        let e = self
            .wait(&format!("the result of command {r}"), d, |e| {
                e.kind() == "result" && e.v["ref"] == json!(r)
            })
            .await?;
        Ok(e.v)
    }

    /// Sends a command and waits for its result (`ok` or not) within one step.
    pub async fn call(&mut self, cmd: Value) -> Result<Value, CaseError> {
        let r = self.send(cmd).await?;
        let step = self.step;
        self.result(r, step).await
    }

    /// Sends a command that must succeed, and returns its result.
    pub async fn call_ok(&mut self, cmd: Value) -> Result<Value, CaseError> {
        let what = cmd["cmd"].as_str().unwrap_or("?").to_string();
        let v = self.call(cmd).await?;
        if v["ok"] != json!(true) {
            return Err(fail(format!(
                "the driver's `{what}` failed: {}",
                v["error"]
            )));
        }
        Ok(v)
    }

    /// Every event so far, in order.
    pub fn events(&self) -> &[Event] {
        &self.seen
    }

    /// Reads the events that already arrived, without waiting.
    pub fn poll(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            self.seen.push(e);
        }
    }

    /// The events of one kind so far.
    pub fn of_kind(&mut self, kind: &str) -> Vec<Value> {
        self.poll();
        self.seen
            .iter()
            .filter(|e| e.kind() == kind)
            .map(|e| e.v.clone())
            .collect()
    }

    /// The `seq`s of the messages delivered on `channel` so far.
    pub fn delivered(&mut self, channel: &str) -> Vec<u64> {
        self.of_kind("message")
            .iter()
            .filter(|m| m["channel"] == channel)
            .filter_map(|m| m["seq"].as_u64())
            .collect()
    }

    /// Waits for the first event (already seen or new) that `pred` accepts.
    pub async fn wait(
        &mut self,
        what: &str,
        d: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Result<Event, CaseError> {
        let mut checked = 0;
        self.until(what, d, |seen| {
            let hit = seen[checked..].iter().position(&pred).map(|i| i + checked);
            checked = seen.len();
            hit
        })
        .await
        .map(|i| self.seen[i].clone())
    }

    /// Waits until `cond` over all events so far returns `Some`.
    pub async fn until<T>(
        &mut self,
        what: &str,
        d: Duration,
        mut cond: impl FnMut(&[Event]) -> Option<T>,
    ) -> Result<T, CaseError> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            self.poll();
            if let Some(t) = cond(&self.seen) {
                return Ok(t);
            }
            if self.exited {
                return Err(fail(format!(
                    "the driver exited while the case waited for {what}{}",
                    self.exit_note()
                )));
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => self.seen.push(e),
                Ok(None) => self.exited = true,
                Err(_) => {
                    return Err(fail(format!(
                        "the driver did not report {what} within {d:?}"
                    )))
                }
            }
        }
    }

    /// Collects events for `d`.
    pub async fn settle(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while !self.exited {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => self.seen.push(e),
                Ok(None) => self.exited = true,
                Err(_) => return,
            }
        }
    }

    fn exit_note(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                format!(" (it exited with {status}; its stderr is in the transcript)")
            }
            _ => String::new(),
        }
    }
}

impl Drop for DriverProc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
