//! The Redis store: shared by every instance of a fleet, on one node, behind Redis
//! Sentinel, or on a Redis Cluster (the redis crate's own clients for each). Commands
//! time out quickly so a dead or failing-over Redis degrades the gateway (answers from
//! memory where that is safe) instead of hanging it, and [`Health`] turns the stream of
//! command results into one log line per change of state, a gauge and a count of
//! outages for `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures_util::future::BoxFuture;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, RedisResult, Script, Value};

use super::{PushClaim, Store, StoreHealth, PUSH_PENDING};
use crate::error::{Error, Result};

/// How long a connection attempt and a command may take: short, because the request
/// that waits for it has a person or WeChat (5 s) behind it.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);

/// Where the store's Redis is.
#[derive(Debug, Clone)]
pub enum Topology {
    /// One node: `redis://` or `rediss://`.
    Single(String),
    /// The master named `master_name`, found through these sentinels.
    Sentinel {
        master_name: String,
        nodes: Vec<String>,
        db: i64,
    },
    /// A Redis Cluster, learnt from these seed nodes.
    Cluster(Vec<String>),
}

impl Topology {
    fn mode(&self) -> &'static str {
        match self {
            Topology::Single(_) => "single",
            Topology::Sentinel { .. } => "sentinel",
            Topology::Cluster(_) => "cluster",
        }
    }

    fn tls(&self) -> bool {
        match self {
            Topology::Single(url) => url.starts_with("rediss://"),
            Topology::Sentinel { nodes, .. } | Topology::Cluster(nodes) => {
                nodes.iter().any(|n| n.starts_with("rediss://"))
            }
        }
    }
}

pub struct RedisStore {
    conn: Conn,
    health: Health,
    compare_and_delete: Script,
    compare_and_set: Script,
    increment: Script,
    claim_push: Script,
}

/// A connection of any topology, cheap to clone, that every command goes through.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelLink>),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(link) => Box::pin(async move {
                let mut c = link.master().await?;
                let r = c.req_packed_command(cmd).await;
                link.after(&r);
                r
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(link) => Box::pin(async move {
                let mut c = link.master().await?;
                let r = c.req_packed_commands(pipeline, offset, count).await;
                link.after(&r);
                r
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(link) => link.db,
        }
    }
}

/// The connection to the master the sentinels name. It is asked for once and kept;
/// a command that fails the way a lost or demoted master fails (I/O, timeout,
/// `READONLY` from a replica) drops it, and the next command asks the sentinels again,
/// so the store follows a failover without a restart.
struct SentinelLink {
    client: tokio::sync::Mutex<SentinelClient>,
    master: ArcSwapOption<MultiplexedConnection>,
    config: redis::AsyncConnectionConfig,
    db: i64,
}

impl SentinelLink {
    async fn master(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(c) = self.master.load_full() {
            return Ok((*c).clone());
        }
        let mut client = self.client.lock().await;
        // Another command may have found the master while this one waited.
        if let Some(c) = self.master.load_full() {
            return Ok((*c).clone());
        }
        let c = client
            .get_async_connection_with_config(&self.config)
            .await?;
        self.master.store(Some(Arc::new(c.clone())));
        Ok(c)
    }

    fn after<T>(&self, r: &RedisResult<T>) {
        if r.as_ref().is_err_and(unreachable) {
            self.master.store(None);
        }
    }
}

/// Whether an error says the server (or the slot's master) cannot be reached, rather
/// than refusing the command: server errors (a script's, a wrong type's) say nothing
/// about reachability; `READONLY` is a demoted master; a redirect that reaches us means
/// the client ran out of retries following a slot whose master is gone; a loading
/// replica is not serving yet.
fn unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::ReadOnly
                    | redis::ServerErrorKind::Moved
                    | redis::ServerErrorKind::Ask
                    | redis::ServerErrorKind::BusyLoading
                    | redis::ServerErrorKind::ClusterDown
                    | redis::ServerErrorKind::MasterDown
                    | redis::ServerErrorKind::TryAgain
            ) | redis::ErrorKind::ClusterConnectionNotFound
                | redis::ErrorKind::MasterNameNotFoundBySentinel
        )
}

/// Whether the store answers, as the commands find it: a change is logged once and
/// counted, never once a request.
struct Health {
    /// The topology: `single`, `sentinel`, `cluster`.
    mode: &'static str,
    down: AtomicBool,
    since: Mutex<Option<(Instant, String)>>,
    outages: AtomicU64,
    // Looked up once: every command counts itself.
    commands: metrics::Counter,
    errors: metrics::Counter,
    up: metrics::Gauge,
    outages_total: metrics::Counter,
}

impl Health {
    fn new(mode: &'static str) -> Health {
        let up = metrics::gauge!("wxgate_store_up", "store" => "redis", "mode" => mode);
        up.set(1.0);
        Health {
            mode,
            down: AtomicBool::new(false),
            since: Mutex::new(None),
            outages: AtomicU64::new(0),
            commands: metrics::counter!("wxgate_store_commands_total", "store" => "redis"),
            errors: metrics::counter!("wxgate_store_errors_total", "store" => "redis"),
            up,
            outages_total: metrics::counter!("wxgate_store_outages_total", "store" => "redis", "mode" => mode),
        }
    }

    fn failed(&self, e: &redis::RedisError) {
        self.errors.increment(1);
        if unreachable(e) && !self.down.swap(true, Ordering::AcqRel) {
            if let Ok(mut since) = self.since.lock() {
                *since = Some((Instant::now(), e.to_string()));
            }
            self.outages.fetch_add(1, Ordering::Relaxed);
            self.outages_total.increment(1);
            self.up.set(0.0);
            tracing::warn!(mode = self.mode, error = %e, "redis store unavailable: serving valid tokens and tickets from memory, refreshes wait for the store");
        }
    }

    fn answered(&self) {
        // One relaxed load on the hot path; the rest only on a change of state.
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::AcqRel) {
            let down_for = self
                .since
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .map_or(0, |(at, _)| at.elapsed().as_millis() as u64);
            self.up.set(1.0);
            tracing::info!(
                mode = self.mode,
                down_for_ms = down_for,
                "redis store answers again"
            );
        }
    }

    fn snapshot(&self) -> StoreHealth {
        let since = self.since.lock().ok().and_then(|s| s.clone());
        StoreHealth {
            mode: self.mode,
            up: !self.down.load(Ordering::Acquire),
            down_for_ms: since
                .as_ref()
                .map(|(at, _)| at.elapsed().as_millis() as u64),
            last_error: since.map(|(_, e)| e),
            outages: self.outages.load(Ordering::Relaxed),
        }
    }
}

fn px(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

fn client_error(e: redis::RedisError) -> Error {
    Error::Store(format!("redis: {e}"))
}

impl RedisStore {
    /// Prepares a connection to `url`; it is made on first use and remade after failures.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_ca(url, None).await
    }

    /// [`RedisStore::connect`], trusting `ca` (PEM) for a `rediss://` server's
    /// certificate instead of the system's roots. TLS is rustls, as for WeChat's API.
    pub async fn connect_with_ca(url: &str, ca: Option<Vec<u8>>) -> Result<Self> {
        Self::open(Topology::Single(url.to_owned()), ca).await
    }

    /// Prepares the store on `topology`. Nothing is connected yet: the first command
    /// connects, so a gateway starts (and serves what it can) while Redis is down.
    pub async fn open(topology: Topology, ca: Option<Vec<u8>>) -> Result<Self> {
        let (mode, tls) = (topology.mode(), topology.tls());
        if ca.is_some() && !tls {
            return Err(Error::Config(
                "store.redis_ca_file is for rediss:// (TLS) nodes".into(),
            ));
        }
        let certs = ca.map(|root_cert| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        });
        let conn = match topology {
            Topology::Single(url) => {
                let client = match certs {
                    Some(c) => redis::Client::build_with_tls(url.as_str(), c),
                    None => redis::Client::open(url.as_str()),
                }
                .map_err(client_error)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                Conn::Single(
                    ConnectionManager::new_lazy_with_config(client, config)
                        .map_err(client_error)?,
                )
            }
            Topology::Cluster(nodes) => {
                let mut builder = redis::cluster::ClusterClient::builder(nodes)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    // A failover takes the cluster a few seconds: retry within about
                    // one second, then answer from memory rather than hold the request.
                    .retries(10)
                    .min_retry_wait(50)
                    .max_retry_wait(400)
                    .overall_response_timeout(Some(Duration::from_millis(2000)));
                if let Some(c) = certs {
                    builder = builder.certs(c);
                }
                let client = builder.build().map_err(client_error)?;
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT);
                Conn::Cluster(client.get_pending_async_connection_with_config(config))
            }
            Topology::Sentinel {
                master_name,
                nodes,
                db,
            } => {
                let addrs = nodes
                    .iter()
                    .map(|n| {
                        redis::IntoConnectionInfo::into_connection_info(n.as_str())
                            .map(|i| i.addr().clone())
                    })
                    .collect::<RedisResult<Vec<_>>>()
                    .map_err(client_error)?;
                let mut builder =
                    SentinelClientBuilder::new(addrs, master_name, SentinelServerType::Master)
                        .map_err(client_error)?
                        .set_client_to_redis_db(db);
                if tls {
                    builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
                }
                if let Some(c) = certs {
                    builder = builder
                        .set_client_to_redis_certificates(c.clone())
                        .set_client_to_sentinel_certificates(c);
                }
                let client = builder.build().map_err(client_error)?;
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT));
                Conn::Sentinel(Arc::new(SentinelLink {
                    client: tokio::sync::Mutex::new(client),
                    master: ArcSwapOption::empty(),
                    config,
                    db,
                }))
            }
        };
        Ok(RedisStore {
            conn,
            health: Health::new(mode),
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

    fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// A command's result, as the store's health sees it. Every command is one round
    /// trip (a script too), counted: the bench reads round trips a push from it.
    fn seen<T>(&self, r: RedisResult<T>) -> Result<T> {
        self.health.commands.increment(1);
        match r {
            Ok(v) => {
                self.health.answered();
                Ok(v)
            }
            Err(e) => {
                self.health.failed(&e);
                Err(client_error(e))
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> redis::RedisError {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused").into()
    }

    #[test]
    fn an_outage_is_one_change_of_state_however_many_commands_fail() {
        let h = Health::new("single");
        assert!(h.snapshot().up);
        for _ in 0..1000 {
            h.failed(&refused());
        }
        let s = h.snapshot();
        assert!(!s.up);
        assert_eq!(s.outages, 1);
        assert!(s.last_error.unwrap().contains("refused"));
        h.answered();
        h.answered();
        let s = h.snapshot();
        assert!(s.up && s.down_for_ms.is_none());
        assert_eq!(s.outages, 1);
        h.failed(&refused());
        assert_eq!(h.snapshot().outages, 2);
    }

    #[test]
    fn a_server_error_is_not_an_outage() {
        let h = Health::new("cluster");
        let script_error: redis::RedisError = (
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "ERR bad",
        )
            .into();
        h.failed(&script_error);
        assert!(h.snapshot().up);
        let moved: redis::RedisError = (
            redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
            "CLUSTERDOWN",
        )
            .into();
        h.failed(&moved);
        assert!(!h.snapshot().up);
    }
}
