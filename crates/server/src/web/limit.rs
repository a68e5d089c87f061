//! Rate limits on the routes that spend a WeChat call for an anonymous caller
//! (`/wx/mp/login` spends a `jscode2session`, `/wx/auth/callback` an OAuth code
//! exchange), and on failed authentications: without them a script can burn the app's
//! WeChat API limits or guess secrets for free.
//!
//! The limits are built so that an attacker cannot aim them at the users they protect:
//!
//! - A call is charged only once it is well-formed (a login with a code, a callback with
//!   a valid state): malformed requests are refused by their own 400 and cost nothing.
//! - Each route [`Family`] has its own budget per account, so a flood of Mini Program
//!   logins cannot starve the OAuth callback of the same account.
//! - A failed authentication (a wrong compat secret, a wrong console key) is charged to
//!   the client that failed ([`Limits::failed_auth`]), never to the account: a stranger
//!   who knows the public appid cannot make the valid clients' requests fail. A request
//!   that proves a valid secret is never refused by these limits.
//!
//! GCRA limiters (governor): one per client address (an IPv4 address, an IPv6 /64,
//! since one host holds a whole /64) and family, one per account and family as the
//! backstop a botnet meets. The client table is bounded (`rate_limit.max_clients`):
//! when full, idle entries are dropped, and if it is still full a client is held to one
//! of 4096 shared buckets (by a keyed hash of its address) with the same quota, so
//! memory stays bounded whatever addresses an attacker uses and a client stays limited.
//! A refusal is a 429 with `Retry-After`, counted by route, logged once a minute at most.
//!
//! The client address is the connection's peer, or, from a peer in
//! `server.trusted_proxies`, the last address of `server.client_ip_header`.

use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{RateLimitConfig, ServerConfig};

/// A family of routes that spend WeChat calls for anonymous callers. Each family has its
/// own budget per client and per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `/wx/mp/login`, `/wx/mp/phone`, `/wx/mp/check/text`, `/wx/mp/session?remote=1`,
    /// `/wx/mp/session/reset`.
    MiniProgram,
    /// `/wx/auth/callback`.
    OAuth,
}

/// A client table bounded by `max_clients`, with shared overflow buckets past it.
struct ClientLimiter<K: Hash + Eq + Clone> {
    table: DefaultKeyedRateLimiter<K>,
    /// When `table` is full: shared buckets by a keyed hash of the key.
    overflow: DefaultKeyedRateLimiter<u16>,
    hasher: std::collections::hash_map::RandomState,
    max: usize,
}

/// The shared buckets of clients past `max_clients`.
const OVERFLOW_BUCKETS: u64 = 4096;

impl<K: Hash + Eq + Clone> ClientLimiter<K> {
    fn new(q: Quota, max: usize) -> Self {
        ClientLimiter {
            table: RateLimiter::keyed(q),
            overflow: RateLimiter::keyed(q),
            hasher: Default::default(),
            max: max.max(1),
        }
    }

    fn forget_idle(&self) {
        self.table.retain_recent();
        self.table.shrink_to_fit();
    }

    /// One call of `key`: `Err(wait)` past its quota.
    fn check(
        &self,
        key: &K,
        now: <DefaultClock as Clock>::Instant,
    ) -> Result<(), std::time::Duration> {
        let mut room = self.table.len() < self.max;
        if !room {
            self.forget_idle();
            room = self.table.len() < self.max;
        }
        if room {
            self.table.check_key(key)
        } else {
            let bucket = (self.hasher.hash_one(key) % OVERFLOW_BUCKETS) as u16;
            self.overflow.check_key(&bucket)
        }
        .map_err(|n| n.wait_time_from(now))
    }
}

/// The limiters of a gateway.
pub struct Limits {
    enabled: bool,
    clients: ClientLimiter<(Family, IpAddr)>,
    accounts: DefaultKeyedRateLimiter<(Family, String)>,
    /// Failed authentications per client address.
    failures: ClientLimiter<IpAddr>,
    /// Failed authentications of all clients together: a ceiling on what failures cost
    /// (hashing, log lines), never applied to a request with the right secret.
    failures_all: DefaultDirectRateLimiter,
    clock: DefaultClock,
    last_logged: AtomicI64,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let one = NonZeroU32::MIN;
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(one))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

/// The key of a client address: IPv4 as it is, IPv6 cut to its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client's address: the peer, or a trusted proxy's word for it.
pub fn client_addr(server: &ServerConfig, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
    let peer_ip = peer.map_or(IpAddr::from([127, 0, 0, 1]), |p| p.ip());
    let Some(name) = &server.client_ip_header else {
        return peer_ip;
    };
    if !server.trusted_proxies.contains(&peer_ip) {
        return peer_ip;
    }
    headers
        .get_all(name.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or(peer_ip)
}

impl Limits {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        let per_client = quota(cfg.per_client_per_minute, cfg.per_client_burst);
        let failures = quota(
            cfg.failed_auth_per_client_per_minute,
            cfg.failed_auth_per_client_burst,
        );
        Limits {
            enabled: cfg.enabled,
            clients: ClientLimiter::new(per_client, cfg.max_clients),
            accounts: RateLimiter::keyed(quota(cfg.per_account_per_minute, cfg.per_account_burst)),
            failures: ClientLimiter::new(failures, cfg.max_clients),
            failures_all: RateLimiter::direct(quota(
                cfg.failed_auth_per_minute,
                cfg.failed_auth_per_minute,
            )),
            clock: DefaultClock::default(),
            last_logged: AtomicI64::new(i64::MIN),
        }
    }

    /// Drops the clients whose limit has fully recovered (the upkeep calls it).
    pub fn forget_idle(&self) {
        self.clients.forget_idle();
        self.failures.forget_idle();
        self.accounts.retain_recent();
    }

    /// Client addresses remembered now (all families, and failures).
    pub fn clients_tracked(&self) -> usize {
        self.clients.table.len() + self.failures.table.len()
    }

    /// Admits one well-formed call of `route` (of `family`) for `account` from
    /// `client`, or answers the 429. Call it once the request is known to be well-formed
    /// and right before the WeChat call it pays for.
    pub fn admit(
        &self,
        family: Family,
        route: &'static str,
        account: &str,
        client: IpAddr,
    ) -> Result<(), Limited> {
        if !self.enabled {
            return Ok(());
        }
        let now = self.clock.now();
        let verdict = self
            .clients
            .check(&(family, client_key(client)), now)
            .and_then(|()| {
                self.accounts
                    .check_key(&(family, account.to_owned()))
                    .map_err(|n| n.wait_time_from(now))
            });
        self.verdict(route, verdict)
    }

    /// Charges one failed authentication (a wrong secret or key) of `route` to
    /// `client`, and to the ceiling of all failures; `Err` once either is spent, which
    /// the caller answers instead of "wrong secret". Only failures are charged, so a
    /// client with the right secret is never refused, whoever else fails.
    pub fn failed_auth(&self, route: &'static str, client: IpAddr) -> Result<(), Limited> {
        if !self.enabled {
            return Ok(());
        }
        let now = self.clock.now();
        let verdict = self
            .failures
            .check(&client_key(client), now)
            .and_then(|()| self.failures_all.check().map_err(|n| n.wait_time_from(now)));
        self.verdict(route, verdict)
    }

    fn verdict(
        &self,
        route: &'static str,
        verdict: Result<(), std::time::Duration>,
    ) -> Result<(), Limited> {
        match verdict {
            Ok(()) => Ok(()),
            Err(wait) => {
                metrics::counter!("wxgate_rate_limited_total", "route" => route).increment(1);
                self.log_once_a_minute(route);
                Err(Limited {
                    retry_after: wait.as_secs() + 1,
                })
            }
        }
    }

    fn log_once_a_minute(&self, route: &'static str) {
        let minute = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64 / 60);
        if self.last_logged.swap(minute, Ordering::Relaxed) != minute {
            tracing::warn!(
                route,
                "rate limit reached: answering 429 (counted in wxgate_rate_limited_total)"
            );
        }
    }
}

/// A refusal: answered 429 with `Retry-After` (whole seconds).
#[derive(Debug)]
pub struct Limited {
    pub retry_after: u64,
}

impl IntoResponse for Limited {
    fn into_response(self) -> Response {
        let mut r = super::envelope::error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests: retry later",
        );
        if let Ok(v) = HeaderValue::from_str(&self.retry_after.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// The client address of a request, as a handler's argument: the connection's peer
/// (`ConnectInfo`, which the accept loop gives the router's requests) read through
/// `server`'s trusted-proxy rule.
pub struct Client(pub IpAddr);

impl<S> axum::extract::FromRequestParts<S> for Client
where
    S: Send + Sync,
    super::Ctx: axum::extract::FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &S,
    ) -> Result<Self, Self::Rejection> {
        let ctx = <super::Ctx as axum::extract::FromRef<S>>::from_ref(s);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(Client(client_addr(
            &ctx.config.server,
            peer,
            &parts.headers,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(client_key(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_forwarded_address_is_believed_from_trusted_proxies_only() {
        let mut server = ServerConfig {
            client_ip_header: Some("x-forwarded-for".into()),
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
            ..ServerConfig::default()
        };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        let proxy = Some("10.0.0.1:5000".parse().unwrap());
        let stranger = Some("198.51.100.9:5000".parse().unwrap());
        assert_eq!(
            client_addr(&server, proxy, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_addr(&server, stranger, &h),
            "198.51.100.9".parse::<IpAddr>().unwrap()
        );
        server.client_ip_header = None;
        assert_eq!(
            client_addr(&server, proxy, &h),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn the_client_table_is_bounded() {
        let limits = Limits::new(&RateLimitConfig {
            per_client_per_minute: 1,
            per_client_burst: 1,
            max_clients: 10,
            ..RateLimitConfig::default()
        });
        for i in 0..1000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            let _ = limits.admit(Family::MiniProgram, "test", "default", ip);
            assert!(limits.clients_tracked() <= 10);
        }
        // Past the table, a client is still held to a limit (its shared bucket).
        let late = IpAddr::from(5000u32.to_be_bytes());
        let answers: Vec<bool> = (0..3)
            .map(|_| {
                limits
                    .admit(Family::MiniProgram, "test", "default", late)
                    .is_ok()
            })
            .collect();
        assert!(answers.iter().filter(|ok| **ok).count() <= 1, "{answers:?}");
    }
}
