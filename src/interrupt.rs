//! Ctrl-C and SIGTERM as a request, not a kill: the first one raises a flag (and says
//! so), and the sweep drivers look at it between epochs (built-in), between events
//! (external programs) and inside long loops (a large batch ask), so they stop with their
//! records flushed and say how to resume. A second one exits at once with status 130:
//! every record is written with one `write(2)` as its trial finishes, so what is on disk
//! is resumable whenever the process ends (a torn last line is set aside on resume).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    const FIRST: &[u8] = b"\npopsweep: stopping after this epoch; Ctrl-C again to abort\n";
    if REQUESTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe; no destructor or buffer is needed for a
        // resumable directory (see the module comment).
        unsafe { libc::_exit(130) }
    }
    // SAFETY: write(2) on stderr is async-signal-safe; a failed write changes nothing.
    unsafe {
        libc::write(2, FIRST.as_ptr().cast(), FIRST.len());
    }
}

/// Installs the handler for SIGINT and SIGTERM and clears any earlier request.
pub fn install() {
    REQUESTED.store(false, Ordering::SeqCst);
    // SAFETY: the handler only touches an atomic and calls write(2) and _exit(2), which
    // are async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Whether a stop was requested since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
