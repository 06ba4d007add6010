fn main() -> std::process::ExitCode {
    // End quietly when stdout is a closed pipe (`popsweep … | head`), as Unix tools do,
    // rather than panicking inside println!.
    #[cfg(unix)]
    // SAFETY: the first statement of main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A trial's guard (see external/guard.rs) is this binary with a hidden first argument.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == popsweep::external::guard::GUARD_ARG)
    {
        popsweep::external::guard::main(&args[2..]);
    }
    popsweep::cli::main()
}
