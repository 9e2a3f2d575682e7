/// mimalloc: the system allocator's malloc/free showed up as ~16% of the run in `perf` (see
/// docs/performance.md). Built without transparent huge pages (`no_thp`): each worker thread's
/// heap then commits 4 KiB pages, not 2 MiB ones (peak RSS 86 -> 52 MiB at 2 workers, the same
/// CPU time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    target_s3::cli::main()
}
