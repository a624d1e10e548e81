//! Session transcripts recorded from a live run of the embedded reference
//! server: scripted sessions over real WebSockets on 127.0.0.1, each frame
//! kept with its direction, decoded JSON and, for binary encodings, bytes.

use serde::Serialize;

/// One recorded session.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    /// Anchor (`publish-duplicate`).
    pub id: String,
    pub title: String,
    /// What the session shows (Markdown).
    pub description: String,
    pub steps: Vec<Step>,
}

/// One frame, or a note between frames.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `c2s`, `s2c` or empty for a note.
    pub dir: &'static str,
    /// `→` or `←`.
    pub arrow: &'static str,
    /// The envelope's type, when the frame is one.
    pub type_name: Option<String>,
    /// The frame as JSON text (decoded from binary encodings), or the close frame.
    pub text: String,
    /// Hex of a binary frame.
    pub hex: Option<String>,
    /// A note (connection opened, dropped, closed).
    pub note: Option<String>,
}

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    /// The reference server is not available in this build.
    #[error("the reference server is not available")]
    Unavailable,
}

/// Records every scripted session; returns them with the server's name.
pub fn record_all() -> Result<(Vec<Transcript>, String), TranscriptError> {
    Err(TranscriptError::Unavailable)
}
