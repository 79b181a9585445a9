//! What several end-to-end tests do to the processes they start: spawn them quiet and stop them
//! as an init system would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A spawned process that is killed when dropped, so a test that fails half-way does not
/// leave its server running (and holding the pipes its output is read from).
pub struct Spawned(Child);

impl std::ops::Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _killed = self.0.kill();
            let _reaped = self.0.wait();
        }
    }
}

/// Spawns `cmd` with no stdin and the given `stdout` and `stderr`.
pub fn spawn(cmd: &mut Command, stdout: Stdio, stderr: Stdio) -> Spawned {
    let cmd = cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    Spawned(cmd.spawn().unwrap())
}

/// Sends `child` SIGTERM and waits up to `within` for it to exit (failing with `stuck` if it
/// does not); returns how it exited.
pub fn terminate(child: &mut Child, within: Duration, stuck: &str) -> ExitStatus {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "{stuck}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
