//! Test support: a scripted WebSocket server and a fault-injecting TCP proxy.
#![allow(dead_code)]

pub mod script;
