use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Without its background thread, jemalloc purges freed pages only when
    // the program allocates again: an idle operator would keep the memory
    // of its last burst (a relist, a rollout of every app) for good.
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("warning: jemalloc background thread not started: {e}");
    }
    stateless_operator::cli::main()
}
