//! One conformance suite, run against both stores: the embedded redb file and Redis.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{RedisServer, TempDir};
use wxgate::store::embedded::EmbeddedStore;
use wxgate::store::redis::RedisStore;
use wxgate::store::{PushClaim, SharedStore, Store, PUSH_DONE, PUSH_PENDING};

async fn conformance(s: SharedStore) {
    // get / set / delete
    assert_eq!(s.get("k1").await.unwrap(), None);
    s.set("k1", "v1", None).await.unwrap();
    assert_eq!(s.get("k1").await.unwrap().as_deref(), Some("v1"));
    s.set("k1", "v2", None).await.unwrap();
    assert_eq!(s.get("k1").await.unwrap().as_deref(), Some("v2"));
    assert!(s.delete("k1").await.unwrap());
    assert!(!s.delete("k1").await.unwrap());
    assert_eq!(s.get("k1").await.unwrap(), None);
    s.set("unicode", "中控 ✓", None).await.unwrap();
    assert_eq!(s.get("unicode").await.unwrap().as_deref(), Some("中控 ✓"));

    // TTL
    s.set("ttl", "x", Some(Duration::from_millis(150)))
        .await
        .unwrap();
    assert_eq!(s.get("ttl").await.unwrap().as_deref(), Some("x"));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(s.get("ttl").await.unwrap(), None);

    // One key, long-lived then short-lived then long-lived again (the embedded store
    // keeps the two kinds apart): always the last value, one delete removes it.
    s.set("moves", "forever", None).await.unwrap();
    s.set("moves", "brief", Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(s.get("moves").await.unwrap().as_deref(), Some("brief"));
    assert!(!s
        .set_if_absent("moves", "x", Duration::from_secs(5))
        .await
        .unwrap());
    s.set("moves", "kept", Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(s.get("moves").await.unwrap().as_deref(), Some("kept"));
    assert!(s
        .compare_and_set(
            "moves",
            Some("kept"),
            "brief again",
            Some(Duration::from_secs(5))
        )
        .await
        .unwrap());
    assert!(s.compare_and_delete("moves", "brief again").await.unwrap());
    assert_eq!(s.get("moves").await.unwrap(), None);

    // set-if-absent with TTL (locks)
    assert!(s
        .set_if_absent("lock", "a", Duration::from_millis(200))
        .await
        .unwrap());
    assert!(!s
        .set_if_absent("lock", "b", Duration::from_millis(200))
        .await
        .unwrap());
    assert_eq!(s.get("lock").await.unwrap().as_deref(), Some("a"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        s.set_if_absent("lock", "b", Duration::from_secs(5))
            .await
            .unwrap(),
        "the lease ended"
    );

    // compare-and-delete (release only one's own lock)
    assert!(!s.compare_and_delete("lock", "a").await.unwrap());
    assert!(s.compare_and_delete("lock", "b").await.unwrap());
    assert!(!s.compare_and_delete("lock", "b").await.unwrap());

    // compare-and-set
    assert!(s.compare_and_set("cas", None, "1", None).await.unwrap());
    assert!(!s.compare_and_set("cas", None, "2", None).await.unwrap());
    assert!(!s
        .compare_and_set("cas", Some("0"), "2", None)
        .await
        .unwrap());
    assert!(s
        .compare_and_set("cas", Some("1"), "2", Some(Duration::from_secs(5)))
        .await
        .unwrap());
    assert_eq!(s.get("cas").await.unwrap().as_deref(), Some("2"));

    // increment with TTL set on first increment
    assert_eq!(
        s.increment("n", Duration::from_millis(300)).await.unwrap(),
        1
    );
    assert_eq!(
        s.increment("n", Duration::from_millis(300)).await.unwrap(),
        2
    );
    assert_eq!(s.increment("n", Duration::from_secs(100)).await.unwrap(), 3);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.increment("n", Duration::from_secs(5)).await.unwrap(),
        1,
        "the counter expired with its first TTL"
    );

    // Concurrent increments and locks are atomic.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.increment("race", Duration::from_secs(5)).await.unwrap();
            s.set_if_absent("race-lock", &i.to_string(), Duration::from_secs(5))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += t.await.unwrap() as usize;
    }
    assert_eq!(winners, 1);
    assert_eq!(s.get("race").await.unwrap().as_deref(), Some("50"));

    // expiry index
    s.index_put("idx", "a", 300).await.unwrap();
    s.index_put("idx", "b", 100).await.unwrap();
    s.index_put("idx", "c", 200).await.unwrap();
    s.index_put("other", "z", 0).await.unwrap();
    assert_eq!(
        s.index_due("idx", 250, 10).await.unwrap(),
        vec![("b".to_string(), 100), ("c".to_string(), 200)]
    );
    assert_eq!(
        s.index_due("idx", 250, 1).await.unwrap(),
        vec![("b".to_string(), 100)]
    );
    s.index_put("idx", "b", 400).await.unwrap();
    assert_eq!(
        s.index_due("idx", 250, 10).await.unwrap(),
        vec![("c".to_string(), 200)]
    );
    s.index_remove("idx", "c").await.unwrap();
    assert_eq!(s.index_due("idx", 250, 10).await.unwrap(), vec![]);
    assert_eq!(s.index_due("idx", 1000, 10).await.unwrap().len(), 2);

    // The push ledger: claimed once, then known with its answer; a used nonce under
    // another message is a replay and leaves nothing behind.
    let (minute, window) = (Duration::from_secs(60), Duration::from_secs(300));
    let claim = |d: &'static str, n: &'static str| {
        let s = s.clone();
        async move { s.claim_push(d, n, minute, window).await.unwrap() }
    };
    assert_eq!(claim("push:d1", "push:n1").await, PushClaim::Claimed);
    assert_eq!(
        claim("push:d1", "push:n2").await,
        PushClaim::Known(PUSH_PENDING.into())
    );
    assert_eq!(claim("push:d2", "push:n1").await, PushClaim::Replay);
    assert_eq!(s.push_answer("push:d2").await.unwrap(), None);
    s.settle_push("push:d1", PUSH_DONE, minute).await.unwrap();
    assert_eq!(
        claim("push:d1", "push:n3").await,
        PushClaim::Known(PUSH_DONE.into())
    );
    assert_eq!(claim("push:d3", "push:n3").await, PushClaim::Claimed);
    let reply = "done:1700000000:{\"type\":\"text\",\"content\":\"中控\"}";
    s.settle_push("push:d3", reply, minute).await.unwrap();
    assert_eq!(
        s.push_answer("push:d3").await.unwrap().as_deref(),
        Some(reply)
    );
    assert_eq!(s.push_answer("push:none").await.unwrap(), None);

    s.ping().await.unwrap();
}

#[tokio::test]
async fn embedded_store_conforms_and_survives_reopening() {
    let dir = TempDir::new("embedded");
    let path = dir.path().join("sub/wxgate.redb");
    {
        let s: SharedStore = Arc::new(EmbeddedStore::open(&path).unwrap());
        assert_eq!(s.kind(), "embedded");
        conformance(s.clone()).await;
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
    conformance(s.clone()).await;
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
