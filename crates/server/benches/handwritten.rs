//! The gateway's hand-written parts against the crates that do the same, on real inputs.
//! A hand-written part stays only where it wins by 10% or more, and its doc comment says
//! the figure. Run: `cargo bench -p wxgate --bench handwritten`.
//!
//! - The hot routes' query reader (`web::query::QuerySlots`) against `form_urlencoded`
//!   filling the same slots: kept (147 ns against 366 for a push's query).
//! - The embedded store's map hasher: the FNV-1a written for it (kept here, as it was,
//!   so the decision can be re-checked) took 117 µs for 2,200 lookups of the store's
//!   keys against rustc-hash's 16.0 and foldhash's 17.3, so the store uses foldhash.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use wxgate::jssdk::ConfigQuery;
use wxgate::push::PushQuery;
use wxgate::web::query::QuerySlots;

/// A safe-mode push's query, as WeChat sends it.
const PUSH: &str = "signature=9e3f3c7b2b9d1f0e8d7c6b5a4f3e2d1c0b9a8f7e&timestamp=1714036504&nonce=1514711492&openid=oyORnuP8q7ou2gfYjqLzSIWZf0rs&encrypt_type=aes&msg_signature=6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d";
/// A `/wx/config` query: the page's URL, encoded, and a JSONP callback.
const CONFIG: &str =
    "url=https%3A%2F%2Fh5.example.com%2Fshop%2Fitem%3Fid%3D1024%26from%3Dtimeline&callback=cb";

/// The same slots filled by `form_urlencoded`, a name given twice refused alike.
fn with_form_urlencoded<Q: QuerySlots>(query: &str) -> Option<Q> {
    let mut q = Q::default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if let Some(slot) = q.slot(&name) {
            if slot.is_some() {
                return None;
            }
            *slot = Some(value.into_owned());
        }
    }
    Some(q)
}

fn query(c: &mut Criterion) {
    let ours = PushQuery::parse(Some(PUSH)).unwrap();
    let theirs: PushQuery = with_form_urlencoded(PUSH).unwrap();
    assert_eq!(ours.msg_signature, theirs.msg_signature);
    let ours = ConfigQuery::parse(Some(CONFIG)).unwrap();
    let theirs: ConfigQuery = with_form_urlencoded(CONFIG).unwrap();
    assert_eq!(ours.url, theirs.url);
    group::<PushQuery>(c, "a push's query", PUSH);
    group::<ConfigQuery>(c, "a /wx/config query", CONFIG);
}

fn group<Q: QuerySlots>(c: &mut Criterion, label: &str, input: &str) {
    let mut g = c.benchmark_group(format!("query, {label}"));
    g.bench_function("QuerySlots (hand-written)", |b| {
        b.iter(|| Q::parse(Some(black_box(input))).map(drop).ok())
    });
    g.bench_function("form_urlencoded", |b| {
        b.iter(|| with_form_urlencoded::<Q>(black_box(input)).map(drop))
    });
    g.finish();
}

/// FNV-1a, the embedded store's hasher until this comparison (no longer used by it).
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The store's keys: credentials of 50 accounts, remembered users, Mini Program sessions.
fn keys() -> Vec<Arc<str>> {
    let mut keys = Vec::new();
    for a in 0..50 {
        for kind in [
            "access_token",
            "ticket:jsapi",
            "ticket:wx_card",
            "quota:20261207",
        ] {
            keys.push(format!("wxgate:{{account{a:04}}}:{kind}"));
        }
        for u in 0..20 {
            keys.push(format!(
                "wxgate:{{account{a:04}}}:user:oSandboxUser0000000000{u:05}"
            ));
            keys.push(format!(
                "wxgate:{{account{a:04}}}:mp_session:{:064x}",
                (a * 1000 + u) as u128 * 0x9e37_79b9_7f4a_7c15
            ));
        }
    }
    keys.into_iter().map(Arc::from).collect()
}

fn lookups<S: BuildHasher + Default + 'static>(keys: &[Arc<str>]) -> impl FnMut() -> usize + '_ {
    let map: HashMap<Arc<str>, usize, S> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), i))
        .collect();
    move || keys.iter().map(|k| map[black_box(&**k)]).sum()
}

fn hasher(c: &mut Criterion) {
    let keys = keys();
    let mut g = c.benchmark_group(format!("store map, {} lookups", keys.len()));
    let mut fnv = lookups::<BuildHasherDefault<Fnv>>(&keys);
    g.bench_function("FNV-1a (hand-written)", |b| b.iter(&mut fnv));
    let mut fx = lookups::<rustc_hash::FxBuildHasher>(&keys);
    g.bench_function("rustc-hash", |b| b.iter(&mut fx));
    let mut fold = lookups::<foldhash::fast::RandomState>(&keys);
    g.bench_function("foldhash", |b| b.iter(&mut fold));
    g.finish();
}

criterion_group!(benches, query, hasher);
criterion_main!(benches);
