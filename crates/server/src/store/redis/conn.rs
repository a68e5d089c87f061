//! Where the store's Redis is and how it is reached: one node (a connection manager),
//! Sentinel (the master's connection kept, dropped when a command fails as a lost or
//! demoted master fails) or a Cluster; one `Conn` for the three, so every command and
//! script is written once.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::SentinelClient;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

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
    pub(super) fn mode(&self) -> &'static str {
        match self {
            Topology::Single(_) => "single",
            Topology::Sentinel { .. } => "sentinel",
            Topology::Cluster(_) => "cluster",
        }
    }

    pub(super) fn tls(&self) -> bool {
        match self {
            Topology::Single(url) => url.starts_with("rediss://"),
            Topology::Sentinel { nodes, .. } | Topology::Cluster(nodes) => {
                nodes.iter().any(|n| n.starts_with("rediss://"))
            }
        }
    }
}

/// A connection of any topology, cheap to clone, that every command goes through.
#[derive(Clone)]
pub(super) enum Conn {
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
pub(super) struct SentinelLink {
    pub(super) client: tokio::sync::Mutex<SentinelClient>,
    pub(super) master: ArcSwapOption<MultiplexedConnection>,
    pub(super) config: redis::AsyncConnectionConfig,
    pub(super) db: i64,
}

impl SentinelLink {
    pub(super) async fn master(&self) -> RedisResult<MultiplexedConnection> {
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

    pub(super) fn after<T>(&self, r: &RedisResult<T>) {
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
pub(super) fn unreachable(e: &redis::RedisError) -> bool {
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
