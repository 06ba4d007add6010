//! The trial guard: a small popsweep process between popsweep and each trial's program, so
//! that nothing a trial started outlives popsweep, however popsweep ends.
//!
//! The kernel's parent-death signal reaches only a direct child, and a program's own
//! children (DataLoader workers, a shell's pipeline) are re-parented to init when the
//! program dies. So popsweep starts `popsweep __trial-guard PROGRAM ARGS…` instead:
//! - the guard is a child subreaper (`PR_SET_CHILD_SUBREAPER`): every orphan of the trial
//!   becomes its child rather than init's, so it can find and reap them;
//! - its parent-death signal is SIGTERM: when popsweep dies, even by SIGKILL, the guard
//!   kills every descendant (and anything left in the trial's process group) and exits;
//! - when the program exits, the guard does the same and exits with the program's status
//!   (re-raising its signal), so popsweep sees what it would have seen without the guard.
//!
//! Signals are taken synchronously (`sigwait`), so no handler runs inside an allocation.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The hidden first argument that makes the binary a guard.
pub const GUARD_ARG: &str = "__trial-guard";
/// The PID of the popsweep that started the guard, to close the race in which popsweep
/// dies before the guard has asked for a parent-death signal.
pub const PARENT_VAR: &str = "POPSWEEP_GUARD_PARENT";

/// Runs the guard over `program` (argv without the guard argument) and never returns.
pub fn main(program: &[OsString]) -> ! {
    // SAFETY: plain libc calls on local, initialised signal sets; prctl takes integers.
    let signals = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        set
    };
    let parent_gone = std::env::var(PARENT_VAR)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
        // SAFETY: getppid has no arguments and cannot fail.
        .is_some_and(|p| p != unsafe { libc::getppid() });
    if parent_gone || program.is_empty() {
        std::process::exit(if parent_gone { 137 } else { 2 });
    }
    let mut command = Command::new(&program[0]);
    command.args(&program[1..]).env_remove(PARENT_VAR);
    // SAFETY: sigprocmask is async-signal-safe: the program starts with no signal blocked.
    unsafe {
        command.pre_exec(|| {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = match command.spawn() {
        Ok(child) => child.id() as i32,
        Err(e) => {
            eprintln!("popsweep: cannot start {:?}: {e}", program[0]);
            std::process::exit(127);
        }
    };
    loop {
        let mut signal = 0;
        // SAFETY: `signals` is an initialised set; `signal` is a valid out-pointer.
        if unsafe { libc::sigwait(&signals, &mut signal) } != 0 {
            continue;
        }
        if signal != libc::SIGCHLD {
            kill_descendants();
            std::process::exit(128 + signal);
        }
        if let Some(status) = reap(child) {
            kill_descendants();
            exit_as(status);
        }
    }
}

/// Reaps every exited child (the program and adopted orphans); the program's wait status
/// once it has exited.
fn reap(program: i32) -> Option<i32> {
    let mut found = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on any child; `status` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return found;
        }
        if pid == program {
            found = Some(status);
        }
    }
}

/// Kills every descendant of the guard and every other process of its group, reaping
/// them, until none is left (a process may fork while it is being killed).
fn kill_descendants() {
    // SAFETY: getpid and getpgrp have no arguments and cannot fail.
    let (me, group) = unsafe { (libc::getpid(), libc::getpgrp()) };
    for _ in 0..100 {
        let doomed = descendants_and_group(me, group);
        if doomed.is_empty() {
            return;
        }
        for pid in doomed {
            // SAFETY: kill(2) of a process found in /proc; no memory involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        reap(-1);
    }
}

/// Live (not zombie) processes below `root` in the process tree, and the members of
/// `group` other than `root`, read from /proc.
fn descendants_and_group(root: i32, group: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let mut doomed = Vec::new();
    for (pid, dir) in processes() {
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(state), Some(ppid), Some(pgrp)) = (
            fields.first(),
            fields.get(1).and_then(|f| f.parse::<i32>().ok()),
            fields.get(2).and_then(|f| f.parse::<i32>().ok()),
        ) else {
            continue;
        };
        if *state == "Z" || pid == root {
            continue;
        }
        children.entry(ppid).or_default().push(pid);
        // The group is the trial's only when the guard leads it (popsweep starts it so).
        if pgrp == group && group == root {
            doomed.push(pid);
        }
    }
    let mut queue = VecDeque::from([root]);
    while let Some(pid) = queue.pop_front() {
        for &child in children.get(&pid).into_iter().flatten() {
            doomed.push(child);
            queue.push_back(child);
        }
    }
    doomed.sort_unstable();
    doomed.dedup();
    doomed
}

/// Every process in /proc: its PID and its directory there (Linux only; none elsewhere).
pub(super) fn processes() -> impl Iterator<Item = (i32, std::path::PathBuf)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            Some((pid, entry.path()))
        })
}

/// Exits as the program did: its exit code, or its signal re-raised on the guard.
fn exit_as(status: i32) -> ! {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        // SAFETY: restoring the default action and unblocking `signal` (valid numbers
        // from the kernel) before raising it on this process.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(signal);
        }
        std::process::exit(128 + signal);
    }
    std::process::exit(libc::WEXITSTATUS(status));
}
