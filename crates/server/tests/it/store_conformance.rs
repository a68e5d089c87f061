//! One conformance suite, run against every store: the embedded redb file, and Redis on
//! one node, behind Sentinel and as a Cluster (each through a failover).

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{RedisCluster, RedisSentinel, RedisServer, TempDir};
use wxgate::store::embedded::EmbeddedStore;
use wxgate::store::redis::{RedisStore, Topology};
use wxgate::store::{PushClaim, SharedStore, Store, PUSH_DONE, PUSH_PENDING};

/// Every key is under `prefix`, so the suite runs twice on one store (before and after
/// a failover).
async fn conformance(s: SharedStore, prefix: &str) {
    let k = |name: &str| format!("{prefix}{name}");
    // get / set / delete
    assert_eq!(s.get(&k("k1")).await.unwrap(), None);
    s.set(&k("k1"), "v1", None).await.unwrap();
    assert_eq!(s.get(&k("k1")).await.unwrap().as_deref(), Some("v1"));
    s.set(&k("k1"), "v2", None).await.unwrap();
    assert_eq!(s.get(&k("k1")).await.unwrap().as_deref(), Some("v2"));
    assert!(s.delete(&k("k1")).await.unwrap());
    assert!(!s.delete(&k("k1")).await.unwrap());
    assert_eq!(s.get(&k("k1")).await.unwrap(), None);
    s.set(&k("unicode"), "中控 ✓", None).await.unwrap();
    assert_eq!(
        s.get(&k("unicode")).await.unwrap().as_deref(),
        Some("中控 ✓")
    );

    // TTL
    s.set(&k("ttl"), "x", Some(Duration::from_millis(150)))
        .await
        .unwrap();
    assert_eq!(s.get(&k("ttl")).await.unwrap().as_deref(), Some("x"));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(s.get(&k("ttl")).await.unwrap(), None);

    // One key, long-lived then short-lived then long-lived again (the embedded store
    // keeps the two kinds apart): always the last value, one delete removes it.
    s.set(&k("moves"), "forever", None).await.unwrap();
    s.set(&k("moves"), "brief", Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(s.get(&k("moves")).await.unwrap().as_deref(), Some("brief"));
    assert!(!s
        .set_if_absent(&k("moves"), "x", Duration::from_secs(5))
        .await
        .unwrap());
    s.set(&k("moves"), "kept", Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(s.get(&k("moves")).await.unwrap().as_deref(), Some("kept"));
    assert!(s
        .compare_and_set(
            &k("moves"),
            Some("kept"),
            "brief again",
            Some(Duration::from_secs(5))
        )
        .await
        .unwrap());
    assert!(s
        .compare_and_delete(&k("moves"), "brief again")
        .await
        .unwrap());
    assert_eq!(s.get(&k("moves")).await.unwrap(), None);

    // set-if-absent with TTL (locks)
    assert!(s
        .set_if_absent(&k("lock"), "a", Duration::from_millis(200))
        .await
        .unwrap());
    assert!(!s
        .set_if_absent(&k("lock"), "b", Duration::from_millis(200))
        .await
        .unwrap());
    assert_eq!(s.get(&k("lock")).await.unwrap().as_deref(), Some("a"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        s.set_if_absent(&k("lock"), "b", Duration::from_secs(5))
            .await
            .unwrap(),
        "the lease ended"
    );

    // compare-and-delete (release only one's own lock)
    assert!(!s.compare_and_delete(&k("lock"), "a").await.unwrap());
    assert!(s.compare_and_delete(&k("lock"), "b").await.unwrap());
    assert!(!s.compare_and_delete(&k("lock"), "b").await.unwrap());

    // compare-and-set
    assert!(s.compare_and_set(&k("cas"), None, "1", None).await.unwrap());
    assert!(!s.compare_and_set(&k("cas"), None, "2", None).await.unwrap());
    assert!(!s
        .compare_and_set(&k("cas"), Some("0"), "2", None)
        .await
        .unwrap());
    assert!(s
        .compare_and_set(&k("cas"), Some("1"), "2", Some(Duration::from_secs(5)))
        .await
        .unwrap());
    assert_eq!(s.get(&k("cas")).await.unwrap().as_deref(), Some("2"));

    // increment with TTL set on first increment
    assert_eq!(
        s.increment(&k("n"), Duration::from_millis(300))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.increment(&k("n"), Duration::from_millis(300))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.increment(&k("n"), Duration::from_secs(100))
            .await
            .unwrap(),
        3
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.increment(&k("n"), Duration::from_secs(5)).await.unwrap(),
        1,
        "the counter expired with its first TTL"
    );

    // Concurrent increments and locks are atomic.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (s, race, race_lock) = (s.clone(), k("race"), k("race-lock"));
        tasks.push(tokio::spawn(async move {
            s.increment(&race, Duration::from_secs(5)).await.unwrap();
            s.set_if_absent(&race_lock, &i.to_string(), Duration::from_secs(5))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += t.await.unwrap() as usize;
    }
    assert_eq!(winners, 1);
    assert_eq!(s.get(&k("race")).await.unwrap().as_deref(), Some("50"));

    // expiry index
    s.index_put(&k("idx"), "a", 300).await.unwrap();
    s.index_put(&k("idx"), "b", 100).await.unwrap();
    s.index_put(&k("idx"), "c", 200).await.unwrap();
    s.index_put(&k("other"), "z", 0).await.unwrap();
    assert_eq!(
        s.index_due(&k("idx"), 250, 10).await.unwrap(),
        vec![("b".to_string(), 100), ("c".to_string(), 200)]
    );
    assert_eq!(
        s.index_due(&k("idx"), 250, 1).await.unwrap(),
        vec![("b".to_string(), 100)]
    );
    s.index_put(&k("idx"), "b", 400).await.unwrap();
    assert_eq!(
        s.index_due(&k("idx"), 250, 10).await.unwrap(),
        vec![("c".to_string(), 200)]
    );
    s.index_remove(&k("idx"), "c").await.unwrap();
    assert_eq!(s.index_due(&k("idx"), 250, 10).await.unwrap(), vec![]);
    assert_eq!(s.index_due(&k("idx"), 1000, 10).await.unwrap().len(), 2);

    // The push ledger: claimed once, then known with its answer; a used nonce under
    // another message is a replay and leaves nothing behind. One claim touches two keys,
    // so they share a hash tag, as the gateway's `wxgate:{account}:` keys do (a Cluster
    // refuses a script over keys in two slots).
    let (minute, window) = (Duration::from_secs(60), Duration::from_secs(300));
    let claim = |d: &str, n: &str| {
        let (s, d, n) = (s.clone(), k(d), k(n));
        async move { s.claim_push(&d, &n, minute, window).await.unwrap() }
    };
    assert_eq!(
        claim("push:{t}:d1", "push:{t}:n1").await,
        PushClaim::Claimed
    );
    assert_eq!(
        claim("push:{t}:d1", "push:{t}:n2").await,
        PushClaim::Known(PUSH_PENDING.into())
    );
    assert_eq!(claim("push:{t}:d2", "push:{t}:n1").await, PushClaim::Replay);
    assert_eq!(s.push_answer(&k("push:{t}:d2")).await.unwrap(), None);
    s.settle_push(&k("push:{t}:d1"), PUSH_DONE, minute)
        .await
        .unwrap();
    assert_eq!(
        claim("push:{t}:d1", "push:{t}:n3").await,
        PushClaim::Known(PUSH_DONE.into())
    );
    assert_eq!(
        claim("push:{t}:d3", "push:{t}:n3").await,
        PushClaim::Claimed
    );
    let reply = "done:1700000000:{\"type\":\"text\",\"content\":\"中控\"}";
    s.settle_push(&k("push:{t}:d3"), reply, minute)
        .await
        .unwrap();
    assert_eq!(
        s.push_answer(&k("push:{t}:d3")).await.unwrap().as_deref(),
        Some(reply)
    );
    assert_eq!(s.push_answer(&k("push:{t}:none")).await.unwrap(), None);

    s.ping().await.unwrap();
}

#[tokio::test]
async fn embedded_store_conforms_and_survives_reopening() {
    let dir = TempDir::new("embedded");
    let path = dir.path().join("sub/wxgate.redb");
    {
        let s: SharedStore = Arc::new(EmbeddedStore::open(&path).unwrap());
        assert_eq!(s.kind(), "embedded");
        conformance(s.clone(), "a:").await;
        // A token-like entry reaches the file; a dedup-like one (under 15 minutes) does not.
        s.set("persist", "yes", Some(Duration::from_secs(3600)))
            .await
            .unwrap();
        s.set("ephemeral", "yes", Some(Duration::from_secs(60)))
            .await
            .unwrap();
    }
    let s = EmbeddedStore::open(&path).unwrap();
    assert_eq!(s.get("persist").await.unwrap().as_deref(), Some("yes"));
    assert_eq!(s.get("ephemeral").await.unwrap(), None);
    assert_eq!(s.get("k1").await.unwrap(), None);
}

#[tokio::test]
async fn redis_store_conforms_and_reconnects() {
    let mut redis = RedisServer::start();
    let s: SharedStore = Arc::new(RedisStore::connect(&redis.url()).await.unwrap());
    assert_eq!(s.kind(), "redis");
    conformance(s.clone(), "a:").await;
    // Killed: calls fail fast with a store error. Restarted: it reconnects by itself.
    redis.kill();
    let started = std::time::Instant::now();
    assert!(s.get("k").await.is_err());
    assert!(s.ping().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
    redis.restart();
    let mut ok = false;
    for _ in 0..50 {
        if s.ping().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "reconnected after restart");
    s.set("after", "restart", None).await.unwrap();
    assert_eq!(s.get("after").await.unwrap().as_deref(), Some("restart"));
}

/// A store that answers `ping` again within `within`.
async fn answers_within(s: &SharedStore, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while s.ping().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store never answered again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_store_conforms_and_follows_a_failover() {
    let mut group = tokio::task::spawn_blocking(RedisSentinel::start)
        .await
        .unwrap();
    let topology = Topology::Sentinel {
        master_name: group.master_name.into(),
        nodes: group
            .sentinels
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect(),
        db: 0,
    };
    let s: SharedStore = Arc::new(RedisStore::open(topology, None).await.unwrap());
    assert_eq!(s.health().mode, "sentinel");
    conformance(s.clone(), "a:").await;
    s.set("kept", "through the failover", None).await.unwrap();
    // The replica has it before its master dies (replication is asynchronous).
    let replica = group.replica;
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while common::redis_cli(replica, &["get", "kept"]).trim() != "through the failover" {
            assert!(std::time::Instant::now() < deadline, "not replicated");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    group = tokio::task::spawn_blocking(move || {
        group.kill_master_and_wait_failover();
        group
    })
    .await
    .unwrap();
    answers_within(&s, Duration::from_secs(10)).await;
    assert_eq!(
        s.get("kept").await.unwrap().as_deref(),
        Some("through the failover")
    );
    let h = s.health();
    assert!(h.up && h.outages >= 1, "the failover was seen: {h:?}");
    // The promoted replica takes writes, scripts included.
    conformance(s.clone(), "b:").await;
    assert_eq!(group.current_master(), Some(group.replica));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_store_conforms_and_follows_a_failover() {
    let mut cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let s: SharedStore = Arc::new(
        RedisStore::open(Topology::Cluster(cluster.urls()), None)
            .await
            .unwrap(),
    );
    assert_eq!(s.health().mode, "cluster");
    conformance(s.clone(), "a:").await;
    // Keys land on all three masters; one account's keys on one.
    let key = wxgate::store::keys::credential("default", "access_token");
    s.set(&key, "kept", None).await.unwrap();
    let master = cluster.master_of(&key);
    assert_eq!(
        master,
        cluster.master_of(&wxgate::store::keys::nonce("default", "1", "n")),
        "one account, one slot"
    );
    tokio::time::sleep(Duration::from_millis(500)).await; // replication is asynchronous
    cluster = tokio::task::spawn_blocking(move || {
        cluster.kill(master);
        cluster.wait_failover(master);
        cluster
    })
    .await
    .unwrap();
    answers_within(&s, Duration::from_secs(15)).await;
    assert_eq!(s.get(&key).await.unwrap().as_deref(), Some("kept"));
    assert_ne!(cluster.master_of(&key), master, "a replica took the slot");
    conformance(s.clone(), "b:").await;
}
