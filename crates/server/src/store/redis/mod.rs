//! The Redis store: shared by every instance of a fleet, on one node, behind Redis
//! Sentinel, or on a Redis Cluster (the redis crate's own clients for each). Commands
//! time out quickly so a dead or failing-over Redis degrades the gateway (answers from
//! memory where that is safe) instead of hanging it, and [`Health`] turns the stream of
//! command results into one log line per change of state, a gauge and a count of
//! outages for `/readyz`.

mod commands;
mod conn;
mod health;

pub use conn::Topology;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{RedisResult, Script};

use self::conn::{Conn, SentinelLink};
use self::health::Health;
use crate::error::{Error, Result};

/// How long a connection attempt and a command may take: short, because the request
/// that waits for it has a person or WeChat (5 s) behind it.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);

pub struct RedisStore {
    conn: Conn,
    health: Health,
    compare_and_delete: Script,
    compare_and_set: Script,
    increment: Script,
    claim_push: Script,
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
