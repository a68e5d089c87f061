//! # wxgate: the gateway between WeChat and a business's own servers
//!
//! This crate owns everything that is not the wire protocol (that is `wxgate-proto`) and
//! not the stand-in for WeChat (that is `wxgate-sandbox`): the command line, and, as the
//! gateway grows, configuration, stores, the upstream client, the credential central
//! control and the HTTP routes.

pub mod cli;
