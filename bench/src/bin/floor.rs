//! The floor: the limit doing WeChat's part of each push (`limit::Mode::Floor`) on the
//! allocator and settings wxgate's binary runs on, so that the gap between them is
//! wxgate's own work and not the allocator's: glibc's malloc made the floor about a
//! sixth dearer than jemalloc's thread caches (crates/server/Cargo.toml says why wxgate
//! uses jemalloc). Usage: floor 127.0.0.1:PORT

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// wxgate's jemalloc settings (crates/server/src/main.rs).
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: &[u8; 70] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2\0";

#[tokio::main]
async fn main() {
    wxgate_bench::limit::serve_from_args(wxgate_bench::limit::Mode::Floor, "127.0.0.1:18398").await;
}

#[cfg(test)]
mod tests {
    /// The settings are a copy (the bench does not depend on the server crate): this
    /// keeps them from drifting apart.
    #[test]
    fn the_floor_runs_on_wxgates_jemalloc_settings() {
        let wxgate_main = include_str!("../../../crates/server/src/main.rs");
        let ours = std::str::from_utf8(&super::JEMALLOC_CONF[..super::JEMALLOC_CONF.len() - 1])
            .expect("ASCII");
        assert!(wxgate_main.contains(ours), "{ours} is not wxgate's setting");
    }
}
