fn main() -> std::process::ExitCode {
    // End quietly when stdout is a closed pipe (`popsweep … | head`), as Unix tools do,
    // rather than panicking inside println!.
    #[cfg(unix)]
    // SAFETY: the first statement of main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    popsweep::cli::main()
}
