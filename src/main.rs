//! The `portcullis` binary: choose the allocator, parse the command line and hand over to the
//! library.

/// jemalloc rather than glibc's malloc: glibc keeps what each thread's arena once held (a
/// sign-in burst left hundreds of megabytes behind); jemalloc hands freed pages back to the
/// operating system within seconds (`dirty_decay_ms`, 10 s), purged by its background thread
/// even while the server is idle.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    // Without the background thread, freed pages are purged only when the program next
    // allocates, so an idle server would keep them. Failing to start it is not fatal.
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    portcullis::cli::main()
}
