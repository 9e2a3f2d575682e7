fn main() -> std::process::ExitCode {
    target_s3::cli::main()
}
