//! Servers in a process of their own: scenarios that change process-wide state (a lowered
//! descriptor limit, SIGPIPE at its default action) or measure the server's memory run it in a
//! child copy of the test binary, re-executed on the one test with an environment variable
//! naming the runtime to serve on.
//!
//! The child prints `listening on ADDR` ([`serve_until_stdin_closes`]) and serves until the
//! parent closes its stdin ([`ChildServer::stop`]). The parent reads the child's stdout from a
//! thread for the child's whole life, so that every wait is bounded and the pipe never closes
//! under the child (a write to a closed pipe would kill it with a SIGPIPE that is not the one
//! a scenario may be testing).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// The parent's handle on a child copy of the test binary that serves.
pub struct ChildServer {
    child: Child,
    lines: Receiver<String>,
    patience: Duration,
}

impl ChildServer {
    /// Re-executes this test binary on `test_name` alone with `env` set to `runtime`; every
    /// wait on the child gives up (and fails the test) after `patience`.
    pub fn spawn(test_name: &str, env: &str, runtime: &str, patience: Duration) -> Self {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(env, runtime)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("a child copy of the test binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Keep reading after the receiver is gone: the pipe must stay open.
                let _ = tx.send(line);
            }
        });
        ChildServer {
            child,
            lines,
            patience,
        }
    }

    /// What follows `marker` on the child's next line that has it (libtest may print the
    /// test's name first on the same line).
    pub fn wait_for_line(&self, marker: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(self.patience)
                .unwrap_or_else(|e| panic!("no `{marker}` line from the child: {e}"));
            if let Some((_, rest)) = line.split_once(marker) {
                return rest.to_owned();
            }
        }
    }

    /// The address from the child's `listening on ADDR` line.
    pub fn listening_address(&self) -> SocketAddr {
        let addr = self.wait_for_line("listening on ");
        addr.trim()
            .parse()
            .unwrap_or_else(|e| panic!("the child listens on {addr:?}: {e}"))
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the child's stdin (its cue to stop) and waits for it to exit, killing it after
    /// the patience so that a test cannot hang.
    pub fn stop(mut self) -> ExitStatus {
        drop(self.child.stdin.take());
        let step = Duration::from_millis(20);
        for _ in 0..(self.patience.as_millis() / step.as_millis()).max(1) {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                return status;
            }
            std::thread::sleep(step);
        }
        panic!("the child did not exit within {:?}", self.patience);
    }
}

impl Drop for ChildServer {
    /// A child still running (a failed assertion, a timeout) is killed, never left behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The child's side: announces `addr` to the parent and blocks until the parent closes our
/// stdin; the caller then shuts its server down.
pub fn serve_until_stdin_closes(addr: SocketAddr) {
    announce_listening(addr);
    wait_for_stdin_to_close();
}

/// The child's side: tells the parent where it listens (the line
/// [`ChildServer::listening_address`] reads).
pub fn announce_listening(addr: SocketAddr) {
    println!("listening on {addr}");
    std::io::stdout().flush().expect("stdout to the parent");
}

/// The child's side: blocks until the parent closes our stdin ([`ChildServer::stop`]).
pub fn wait_for_stdin_to_close() {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
