//! The store's operations as Redis commands and scripts.

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::AsyncCommands;

use super::{px, RedisStore};
use crate::error::Result;
use crate::store::{PushClaim, Store, StoreHealth, PUSH_PENDING};

impl Store for RedisStore {
    fn claim_push<'a>(
        &'a self,
        dedup_key: &'a str,
        nonce_key: &'a str,
        dedup_ttl: Duration,
        nonce_ttl: Duration,
    ) -> BoxFuture<'a, Result<PushClaim>> {
        Box::pin(async move {
            let (code, answer): (i64, String) = self.seen(
                self.claim_push
                    .key(dedup_key)
                    .key(nonce_key)
                    .arg(px(dedup_ttl))
                    .arg(px(nonce_ttl))
                    .arg(PUSH_PENDING)
                    .invoke_async(&mut self.conn())
                    .await,
            )?;
            Ok(match (code, answer) {
                (1, a) => PushClaim::Known(a),
                (2, _) => PushClaim::Replay,
                _ => PushClaim::Claimed,
            })
        })
    }

    fn push_answer<'a>(&'a self, dedup_key: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        self.get(dedup_key)
    }

    fn settle_push<'a>(
        &'a self,
        dedup_key: &'a str,
        answer: &'a str,
        dedup_ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        self.set(dedup_key, answer, Some(dedup_ttl))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move { self.seen(self.conn().get(key).await) })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut c = self.conn();
            let r = match ttl {
                Some(t) => c.pset_ex::<_, _, ()>(key, value, px(t)).await,
                None => c.set::<_, _, ()>(key, value).await,
            };
            self.seen(r)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let n: i64 = self.seen(self.conn().del(key).await)?;
            Ok(n > 0)
        })
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let set: Option<String> = self.seen(
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(px(ttl))
                    .query_async(&mut self.conn())
                    .await,
            )?;
            Ok(set.is_some())
        })
    }

    fn compare_and_delete<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let n: i64 = self.seen(
                self.compare_and_delete
                    .key(key)
                    .arg(expected)
                    .invoke_async(&mut self.conn())
                    .await,
            )?;
            Ok(n > 0)
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a str>,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let n: i64 = self.seen(
                self.compare_and_set
                    .key(key)
                    .arg(expected.unwrap_or(""))
                    .arg(value)
                    .arg(ttl.map_or(0, px))
                    .arg(if expected.is_some() {
                        "value"
                    } else {
                        "absent"
                    })
                    .invoke_async(&mut self.conn())
                    .await,
            )?;
            Ok(n == 1)
        })
    }

    fn increment<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            self.seen(
                self.increment
                    .key(key)
                    .arg(px(ttl))
                    .invoke_async(&mut self.conn())
                    .await,
            )
        })
    }

    fn index_put<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        score: i64,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(
            async move { self.seen(self.conn().zadd::<_, _, _, ()>(index, member, score).await) },
        )
    }

    fn index_due<'a>(
        &'a self,
        index: &'a str,
        max: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, i64)>>> {
        Box::pin(async move {
            self.seen(
                self.conn()
                    .zrangebyscore_limit_withscores(index, "-inf", max, 0, limit as isize)
                    .await,
            )
        })
    }

    fn index_remove<'a>(&'a self, index: &'a str, member: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.seen(self.conn().zrem::<_, _, ()>(index, member).await) })
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let _: String = self.seen(redis::cmd("PING").query_async(&mut self.conn()).await)?;
            Ok(())
        })
    }

    fn kind(&self) -> &'static str {
        "redis"
    }

    fn health(&self) -> StoreHealth {
        self.health.snapshot()
    }
}
