//! The embedded store's own behaviour beyond the shared conformance suite: what reaches
//! the file and what stays in memory.

use super::*;

#[tokio::test]
async fn short_lived_entries_stay_in_memory_and_long_lived_ones_reach_the_file() {
    let dir = std::env::temp_dir().join(format!("wxgate-embedded-{}", std::process::id()));
    let path = dir.join("t.redb");
    {
        let s = EmbeddedStore::open(&path).unwrap();
        s.set("token", "kept", Some(Duration::from_secs(7200)))
            .await
            .unwrap();
        s.set("forever", "kept", None).await.unwrap();
        s.set("dedup", "memory only", Some(Duration::from_secs(60)))
            .await
            .unwrap();
        s.set("was-long", "x", None).await.unwrap();
        s.set("was-long", "now short", Some(Duration::from_secs(5)))
            .await
            .unwrap();
        s.index_put("idx", "a", 5).await.unwrap();
        for i in 0..50 {
            s.set(&format!("short{i}"), "x", Some(Duration::from_millis(20)))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for shard in &s.mem.shards {
            lock(shard).purge(now_ms(), usize::MAX);
        }
        let short: usize = s.mem.shards.iter().map(|sh| lock(sh).short.len()).sum();
        assert_eq!(
            short, 2,
            "the 50 expired entries are gone; dedup and was-long stay"
        );
        assert!(s.mem.shards.iter().all(|sh| lock(sh).kv.len() <= 2));
        assert_eq!(
            s.get("dedup").await.unwrap().as_deref(),
            Some("memory only")
        );
    }
    let s = EmbeddedStore::open(&path).unwrap();
    assert_eq!(s.get("token").await.unwrap().as_deref(), Some("kept"));
    assert_eq!(s.get("forever").await.unwrap().as_deref(), Some("kept"));
    assert_eq!(s.get("dedup").await.unwrap(), None, "not persisted");
    assert_eq!(
        s.get("was-long").await.unwrap(),
        None,
        "its durable copy was deleted"
    );
    assert_eq!(
        s.index_due("idx", 10, 10).await.unwrap(),
        vec![("a".to_string(), 5)]
    );
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}
