//! Courier conformance suite.
