/// mimalloc: validation builds a small value tree per record, and the system allocator's
/// malloc/free showed up as ~16% of the run in `perf` (see README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    target_s3::cli::main()
}
