//! The `wxgate` binary: everything lives in the library; this only hands over the exit code.

fn main() -> std::process::ExitCode {
    large_allocations_go_back_to_the_system();
    wxgate::cli::main()
}

/// glibc serves allocations over 128 KiB with mmap, but after the first such block is
/// freed it raises that threshold (up to 32 MiB) and serves later ones from its heap,
/// which keeps freed memory: the push ledger's tables, freed as their minute passes or
/// replaced as they grow, then stayed in the RSS. A fixed threshold keeps large blocks
/// in mmap, returned to the system when freed.
fn large_allocations_go_back_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
