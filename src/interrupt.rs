//! Ctrl-C and SIGTERM as a request, not a kill: the handler only raises a flag, and the
//! sweep drivers look at it between epochs (built-in) or between events (external
//! programs), so they stop with their records flushed and say how to resume.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGINT and SIGTERM and clears any earlier request.
pub fn install() {
    REQUESTED.store(false, Ordering::SeqCst);
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Whether a stop was requested since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
