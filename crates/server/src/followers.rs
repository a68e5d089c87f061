//! `GET /api/v1/{account}/followers`: every follower of an account, streamed as JSON
//! lines, so that an account with millions of followers costs a page of memory, not the
//! list. WeChat gives 10,000 openids a page (`user/get`, the next from `next_openid`) and
//! 100 profiles a batch (`user/info/batchget`); the hand-written loops this replaces
//! broke past 10,000 followers or 100 users a batch.
//!
//! Lines: one per follower (`{"openid"}`, or the profile with `info=1`), and after each
//! page `{"next_openid": "..."}`, from which a broken transfer resumes
//! (`?next_openid=`); the last line is `{"done": true, "total": N}`. An upstream error
//! mid-stream is a last line `{"error": {"errcode", "errmsg"}}`. Calls to WeChat are
//! spaced by `api.followers_call_interval_ms`.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::stream;
use serde_json::{json, Value};
use wxgate_proto::api::user::{BatchGetUserInfo, GetFollowers, UserRef, BATCH_MAX};

use crate::web::Ctx;

/// What to stream.
pub struct Export {
    pub account: String,
    /// Profiles (`user/info/batchget`) rather than openids alone.
    pub info: bool,
    pub lang: String,
    /// Where to start (empty: the first page).
    pub next_openid: String,
}

/// Where the stream is.
struct State {
    ctx: Ctx,
    export: Export,
    /// Openids of the current page not yet written.
    pending: VecDeque<String>,
    /// The page's `next_openid`, written once the page is done.
    page_next: Option<String>,
    total: Option<u64>,
    finished: bool,
    calls: u64,
}

fn line(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn error_line(e: &crate::Error) -> Bytes {
    let (code, msg) = match e {
        crate::Error::WeChat { code, errmsg, .. } => (code.code(), errmsg.clone()),
        other => (-1, other.to_string()),
    };
    line(&json!({ "error": { "errcode": code, "errmsg": msg } }))
}

impl State {
    async fn pace(&mut self) {
        if self.calls > 0 {
            let ms = self.ctx.config.api.followers_call_interval_ms;
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        self.calls += 1;
    }

    /// The next chunk of output, or `None` at the end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        if self.pending.is_empty() {
            if let Some(next) = self.page_next.take() {
                self.export.next_openid = next.clone();
                return Some(line(&json!({ "next_openid": next })));
            }
            // The next page.
            self.pace().await;
            let req = GetFollowers {
                next_openid: self.export.next_openid.clone(),
            };
            let page = match self
                .ctx
                .credentials
                .call_api(&self.export.account, &req)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    self.finished = true;
                    return Some(error_line(&e));
                }
            };
            self.total = Some(page.total);
            let ids = page.data.map(|d| d.openid).unwrap_or_default();
            if ids.is_empty() {
                self.finished = true;
                return Some(line(&json!({ "done": true, "total": page.total })));
            }
            self.pending = ids.into();
            self.page_next = Some(page.next_openid);
        }
        let take = self.pending.len().min(BATCH_MAX);
        let batch: Vec<String> = self.pending.drain(..take).collect();
        if !self.export.info {
            let mut out = Vec::new();
            for openid in batch {
                out.extend_from_slice(&line(&json!({ "openid": openid })));
            }
            return Some(Bytes::from(out));
        }
        self.pace().await;
        let req = BatchGetUserInfo {
            user_list: batch
                .into_iter()
                .map(|openid| UserRef {
                    openid,
                    lang: self.export.lang.clone(),
                })
                .collect(),
        };
        match self
            .ctx
            .credentials
            .call_api(&self.export.account, &req)
            .await
        {
            Ok(list) => {
                let mut out = Vec::new();
                for user in &list.user_info_list {
                    out.extend_from_slice(&line(user));
                }
                Some(Bytes::from(out))
            }
            Err(e) => {
                self.finished = true;
                Some(error_line(&e))
            }
        }
    }
}

/// The export as a streamed body.
pub fn stream(ctx: Ctx, export: Export) -> Body {
    let state = State {
        ctx,
        export,
        pending: VecDeque::new(),
        page_next: None,
        total: None,
        finished: false,
        calls: 0,
    };
    Body::from_stream(stream::unfold(state, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<Bytes, std::convert::Infallible>(chunk), s))
    }))
}
