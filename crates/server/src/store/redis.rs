//! The Redis store: shared by every instance of a fleet. The connection manager
//! reconnects by itself; commands time out quickly so a dead Redis degrades the gateway
//! (answers from memory) instead of hanging it.

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::{PushClaim, Store, PUSH_PENDING};
use crate::error::{Error, Result};

pub struct RedisStore {
    conn: ConnectionManager,
    compare_and_delete: Script,
    compare_and_set: Script,
    increment: Script,
    claim_push: Script,
}

fn err(e: redis::RedisError) -> Error {
    metrics::counter!("wxgate_store_errors_total", "store" => "redis").increment(1);
    Error::Store(format!("redis: {e}"))
}

fn px(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl RedisStore {
    /// Prepares a connection to `url`; it is made on first use and remade after failures.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_ca(url, None).await
    }

    /// [`RedisStore::connect`], trusting `ca` (PEM) for a `rediss://` server's
    /// certificate instead of the system's roots. TLS is rustls, as for WeChat's API.
    pub async fn connect_with_ca(url: &str, ca: Option<Vec<u8>>) -> Result<Self> {
        let client = match ca {
            Some(root_cert) if url.starts_with("rediss://") => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            ),
            Some(_) => {
                return Err(Error::Config(
                    "store.redis_ca_file is for a rediss:// (TLS) redis_url".into(),
                ))
            }
            None => redis::Client::open(url),
        }
        .map_err(err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(1000)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(err)?;
        Ok(RedisStore {
            conn,
            compare_and_delete: Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
            ),
            // ARGV: expected ('' with ARGV[4]=='absent' for none), value, ttl ms (0 none), mode
            compare_and_set: Script::new(
                r#"
local cur = redis.call('GET', KEYS[1])
if ARGV[4] == 'absent' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"#,
            ),
            // KEYS: dedup, nonce. ARGV: dedup ttl ms, nonce ttl ms, pending.
            // {0, ''} claimed, {1, answer} known, {2, ''} replay: one round trip a push.
            claim_push: Script::new(
                r#"
local known = redis.call('GET', KEYS[1])
if known then return {1, known} end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return {2, ''} end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
return {0, ''}
"#,
            ),
            increment: Script::new(
                "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n",
            ),
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

impl Store for RedisStore {
    fn claim_push<'a>(
        &'a self,
        dedup_key: &'a str,
        nonce_key: &'a str,
        dedup_ttl: Duration,
        nonce_ttl: Duration,
    ) -> BoxFuture<'a, Result<PushClaim>> {
        Box::pin(async move {
            let (code, answer): (i64, String) = self
                .claim_push
                .key(dedup_key)
                .key(nonce_key)
                .arg(px(dedup_ttl))
                .arg(px(nonce_ttl))
                .arg(PUSH_PENDING)
                .invoke_async(&mut self.conn())
                .await
                .map_err(err)?;
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
        Box::pin(async move { self.conn().get(key).await.map_err(err) })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut c = self.conn();
            match ttl {
                Some(t) => c.pset_ex::<_, _, ()>(key, value, px(t)).await,
                None => c.set::<_, _, ()>(key, value).await,
            }
            .map_err(err)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let n: i64 = self.conn().del(key).await.map_err(err)?;
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
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(px(ttl))
                .query_async(&mut self.conn())
                .await
                .map_err(err)?;
            Ok(set.is_some())
        })
    }

    fn compare_and_delete<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let n: i64 = self
                .compare_and_delete
                .key(key)
                .arg(expected)
                .invoke_async(&mut self.conn())
                .await
                .map_err(err)?;
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
            let n: i64 = self
                .compare_and_set
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
                .await
                .map_err(err)?;
            Ok(n == 1)
        })
    }

    fn increment<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            self.increment
                .key(key)
                .arg(px(ttl))
                .invoke_async(&mut self.conn())
                .await
                .map_err(err)
        })
    }

    fn index_put<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        score: i64,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.conn()
                .zadd::<_, _, _, ()>(index, member, score)
                .await
                .map_err(err)
        })
    }

    fn index_due<'a>(
        &'a self,
        index: &'a str,
        max: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, i64)>>> {
        Box::pin(async move {
            self.conn()
                .zrangebyscore_limit_withscores(index, "-inf", max, 0, limit as isize)
                .await
                .map_err(err)
        })
    }

    fn index_remove<'a>(&'a self, index: &'a str, member: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.conn()
                .zrem::<_, _, ()>(index, member)
                .await
                .map_err(err)
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let _: String = redis::cmd("PING")
                .query_async(&mut self.conn())
                .await
                .map_err(err)?;
            Ok(())
        })
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
