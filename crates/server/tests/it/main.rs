//! The gateway's integration tests, one binary (one link of the crate instead of one per
//! file): a module per area, and `common`, the harness every module starts its gateways,
//! sandboxes, Redis servers and processes with.

mod common;

mod bad_input;
mod browser;
mod central_control;
mod cli_protocol;
mod compat;
mod component;
mod console;
mod faults;
mod json_push;
mod miniprogram;
mod on_behalf;
mod operations;
mod pay;
mod push;
mod redis_fleet;
mod redis_tls;
mod sandbox_cli;
mod serve_cli;
mod sources;
mod store_conformance;
mod trust;
mod trust_web;
mod web;
