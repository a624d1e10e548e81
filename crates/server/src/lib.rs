//! Courier reference server (WebSocket and SSE transports over tokio).
