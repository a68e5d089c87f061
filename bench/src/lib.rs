//! What the benchmarks measure wxgate against: the limit (a bare axum hello world) and
//! its floor (WeChat's part of a push and nothing else), served by the `limit` and
//! `floor` binaries; `pushgen` and `pushflood` make and send the pushes.

pub mod limit;
