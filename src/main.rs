fn main() -> std::process::ExitCode {
    popsweep::cli::main()
}
