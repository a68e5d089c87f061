//! Who holds the connections: a table of open connections by client address, so that one
//! host cannot take every connection. Without it the cap on connections was global: a
//! host opening `max_connections` idle sockets made `/healthz` time out and WeChat's
//! pushes miss their 5 s.
//!
//! While connections are plentiful, nobody is limited: a backend opening hundreds of
//! connections at once is served. Near the global cap (`max_connections`, less an
//! eighth):
//!
//! - the oldest idle connection of the client holding the most is closed, so a new
//!   client (WeChat with a push) gets a connection instead of waiting behind idle
//!   sockets;
//! - a client holding `server.max_connections_per_client` or more (at most half the
//!   cap) has its oldest idle connection closed for a new one, or, if none is idle, the
//!   new one is closed at once: one host cannot take the rest.
//!
//! The trusted proxies of `server.trusted_proxies` carry many clients' connections and
//! have no share. "Idle" is a connection with no request in flight for at least
//! [`IDLE_GRACE`]: accepted and silent, or between two keep-alive requests (a connection
//! just accepted, whose request is on its way, is not closed). Closing one is hyper's
//! graceful shutdown: a request that races in still gets its answer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

use crate::config::ServerConfig;
use crate::web::limit::client_key;

/// How long a connection must have been without a request before it counts as idle.
pub const IDLE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// One open connection, as the table sees it.
pub struct ConnState {
    id: u64,
    /// Requests in flight on it.
    busy: AtomicUsize,
    /// When it last became idle (a monotonic instant as microseconds since the table
    /// started).
    idle_since: AtomicU64,
    /// Told to close when it is evicted.
    pub evict: Notify,
    /// Evicted already (closing): not chosen again.
    evicted: std::sync::atomic::AtomicBool,
}

impl ConnState {
    /// Tells its task to close it.
    fn close(&self) {
        self.evicted.store(true, Ordering::Release);
        self.evict.notify_one();
    }

    /// Idle since at least `IDLE_GRACE` before `now` (microseconds since the origin),
    /// and not being closed already.
    fn is_idle(&self, now: u64) -> bool {
        self.busy.load(Ordering::Acquire) == 0
            && !self.evicted.load(Ordering::Acquire)
            && now.saturating_sub(self.idle_since.load(Ordering::Acquire))
                >= IDLE_GRACE.as_micros() as u64
    }
}

/// A request in flight on a connection: the connection is busy until it is dropped.
pub struct InFlight {
    conn: Arc<ConnState>,
    origin: Instant,
}

impl InFlight {
    pub fn new(conn: &Arc<ConnState>, table: &ConnTable) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        InFlight {
            conn: conn.clone(),
            origin: table.origin,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.origin.elapsed().as_micros() as u64;
        self.conn.idle_since.store(now, Ordering::Release);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The open connections by client.
pub struct ConnTable {
    per_client: usize,
    exempt: Vec<IpAddr>,
    origin: Instant,
    next_id: AtomicU64,
    by_client: Mutex<HashMap<IpAddr, Vec<Arc<ConnState>>>>,
}

/// A connection's place in the table; dropping it removes the connection.
pub struct Entry {
    table: Arc<ConnTable>,
    client: IpAddr,
    pub state: Arc<ConnState>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Ok(mut t) = self.table.by_client.lock() {
            if let Some(list) = t.get_mut(&self.client) {
                list.retain(|c| c.id != self.state.id);
                if list.is_empty() {
                    t.remove(&self.client);
                }
            }
        }
    }
}

impl ConnTable {
    pub fn new(cfg: &ServerConfig) -> Arc<Self> {
        Arc::new(ConnTable {
            // A share larger than half the cap would let one host take the rest.
            per_client: cfg
                .max_connections_per_client
                .min(cfg.max_connections / 2)
                .max(1),
            exempt: cfg
                .trusted_proxies
                .iter()
                .map(|ip| client_key(*ip))
                .collect(),
            origin: Instant::now(),
            next_id: AtomicU64::new(0),
            by_client: Mutex::new(HashMap::new()),
        })
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    /// Takes a new connection from `peer` into the table. Near the cap (`crowded`), a
    /// client at its share has its oldest idle connection closed for it; `None` when
    /// it has none idle (the new one is to be closed).
    pub fn admit(self: &Arc<Self>, peer: IpAddr, crowded: bool) -> Option<Entry> {
        let client = client_key(peer);
        let now = self.now();
        let mut t = self.by_client.lock().ok()?;
        let list = t.entry(client).or_default();
        if crowded && list.len() >= self.per_client && !self.exempt.contains(&client) {
            Self::oldest_idle(list, now)?.close();
            metrics::counter!("wxgate_connections_evicted_total", "why" => "client_share")
                .increment(1);
        }
        let state = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
            evict: Notify::new(),
            evicted: Default::default(),
        });
        list.push(state.clone());
        Some(Entry {
            table: self.clone(),
            client,
            state,
        })
    }

    /// Closes the oldest idle connection of the client that holds the most: what the
    /// accept loop does near the global cap. Whether one was found.
    pub fn evict_one(&self) -> bool {
        let now = self.now();
        let Ok(t) = self.by_client.lock() else {
            return false;
        };
        let mut clients: Vec<&Vec<Arc<ConnState>>> = t.values().collect();
        clients.sort_by_key(|l| std::cmp::Reverse(l.len()));
        for list in clients {
            if let Some(c) = Self::oldest_idle(list, now) {
                c.close();
                metrics::counter!("wxgate_connections_evicted_total", "why" => "near_cap")
                    .increment(1);
                return true;
            }
        }
        false
    }

    fn oldest_idle(list: &[Arc<ConnState>], now: u64) -> Option<&Arc<ConnState>> {
        list.iter()
            .filter(|c| c.is_idle(now))
            .min_by_key(|c| c.idle_since.load(Ordering::Acquire))
    }

    /// Connections open now from `peer`'s client address.
    pub fn held_by(&self, peer: IpAddr) -> usize {
        self.by_client
            .lock()
            .map(|t| t.get(&client_key(peer)).map_or(0, Vec::len))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(per_client: usize) -> Arc<ConnTable> {
        ConnTable::new(&ServerConfig {
            max_connections_per_client: per_client,
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
            ..ServerConfig::default()
        })
    }

    fn after_grace() {
        std::thread::sleep(IDLE_GRACE + std::time::Duration::from_millis(20));
    }

    #[test]
    fn near_the_cap_a_client_at_its_share_loses_its_oldest_idle_connection_or_the_new_one() {
        let t = table(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = t.admit(ip, true).unwrap();
        let b = t.admit(ip, true).unwrap();
        let _busy_a = InFlight::new(&a.state, &t);
        // b is not idle for long enough yet: the new one is refused.
        assert!(t.admit(ip, true).is_none());
        // Not crowded: no share at all.
        let extra: Vec<_> = (0..5).map(|_| t.admit(ip, false).unwrap()).collect();
        drop(extra);
        after_grace();
        // b has been idle: it is evicted for the third.
        let c = t.admit(ip, true).unwrap();
        assert!(futures_util::FutureExt::now_or_never(b.state.evict.notified()).is_some());
        drop(b);
        let _busy_c = InFlight::new(&c.state, &t);
        assert!(
            t.admit(ip, true).is_none(),
            "every connection busy: the new one is refused"
        );
        // Another client is not affected; a trusted proxy has no share.
        assert!(t.admit("192.0.2.2".parse().unwrap(), true).is_some());
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..10).map(|_| t.admit(proxy, true).unwrap()).collect();
        assert_eq!(t.held_by(proxy), held.len());
    }

    #[test]
    fn near_the_cap_the_largest_clients_idle_connection_goes() {
        let t = table(100);
        let big: IpAddr = "192.0.2.9".parse().unwrap();
        let small: IpAddr = "192.0.2.8".parse().unwrap();
        let _s = t.admit(small, false).unwrap();
        let held: Vec<_> = (0..5).map(|_| t.admit(big, false).unwrap()).collect();
        assert!(!t.evict_one(), "nobody idle past the grace yet");
        after_grace();
        assert!(t.evict_one());
        // The notified one is the big client's; a waiter on it wakes.
        let notified = held
            .iter()
            .filter(|e| futures_util::FutureExt::now_or_never(e.state.evict.notified()).is_some())
            .count();
        assert_eq!(notified, 1);
    }
}
