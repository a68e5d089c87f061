//! The `wxgate` binary: everything lives in the library; this only hands over the exit code
//! and chooses the allocator.

/// jemalloc (the `jemalloc` feature, on by default): see `Cargo.toml` for why.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts (`_RJEM_MALLOC_CONF` in the environment
/// overrides them). Freed pages go back to the system after about a second rather than
/// ten, so that what the push ledger frees (a table outgrown, a minute's entries
/// expired) leaves the RSS soon and a flood's RSS measures what stays; a background
/// thread does that purging on time (without it, purging waits for allocations to
/// trigger it, and 10 s of pushes at 50k/s left 59 MiB of RSS instead of 31); two
/// arenas for the two worker threads a small machine runs keep fewer pages half used.
#[cfg(feature = "jemalloc")]
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: &[u8; 70] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2\0";

fn main() -> std::process::ExitCode {
    large_allocations_go_back_to_the_system();
    wxgate::cli::main()
}

/// glibc serves allocations over 128 KiB with mmap, but after the first such block is
/// freed it raises that threshold (up to 32 MiB) and serves later ones from its heap,
/// which keeps freed memory: the push ledger's tables, freed as their minute passes or
/// replaced as they grow, then stayed in the RSS. A fixed threshold keeps large blocks
/// in mmap, returned to the system when freed. (Without jemalloc only.)
fn large_allocations_go_back_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "jemalloc")))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
