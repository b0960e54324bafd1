//! The TLS examples behave as docs/examples.md says: spawned as a user would run them, on both
//! runtimes, over loopback only. Every server a test starts is stopped by its process id.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};

use loomwork_tls::{SelfSignedCa, LOCALHOST_NAMES};

const RUNTIMES: [&str; 3] = ["std", "smol", "tokio"];

/// The built example binary: `cargo test` builds a package's examples before its tests, into
/// `target/<profile>/examples`, next to this test's own `deps` directory.
fn example(name: &str) -> Command {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path: PathBuf = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} is not built", path.display());
    Command::new(path)
}

/// A scratch directory for one test's certificate files, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "loomwork-tls-examples-{}-{test}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server example running on a free port; stopped (SIGINT, then a kill if it is still
/// there) when dropped, so a failing test leaves nothing behind.
struct Server {
    child: Child,
    addr: String,
    stderr: BufReader<ChildStderr>,
}

impl Server {
    /// Starts `name` with `args` on 127.0.0.1:0 and reads its `listening on KIND ADDR` line.
    fn start(name: &str, kind: &str, runtime: &str, args: &[&str]) -> Self {
        let mut child = example(name)
            .args(["--listen", "127.0.0.1:0", "--runtime", runtime])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {name}: {err}"));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read");
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let Some(addr) = line.trim().strip_prefix(&format!("listening on {kind} ")) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unexpected first line {line:?}");
        };
        let addr = addr.to_owned();
        Server {
            child,
            addr,
            stderr,
        }
    }

    /// The next line the server logged.
    fn log_line(&mut self) -> String {
        let mut line = String::new();
        self.stderr.read_line(&mut line).expect("stderr");
        line.trim_end().to_owned()
    }

    /// SIGINT, as Ctrl-C would send it; the server must exit 0. Returns the rest of its log.
    fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let status = self.child.wait().expect("wait");
        assert_eq!(status.code(), Some(0), "exits 0 on SIGINT");
        let mut log = String::new();
        self.stderr.read_to_string(&mut log).expect("stderr");
        log
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn run(name: &str, args: &[&str]) -> Output {
    example(name).args(args).output().expect("run the client")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Certificates made for one test: a CA, a server certificate for localhost from it, a client
/// certificate for alice from it, and one for mallory from a CA nobody trusts.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    alice_cert: String,
    alice_key: String,
    mallory_cert: String,
    mallory_key: String,
}

impl Pki {
    fn new(scratch: &Scratch) -> Self {
        let ca = SelfSignedCa::new("test CA").unwrap();
        let rogue = SelfSignedCa::new("rogue CA").unwrap();
        let server = ca.issue_server(LOCALHOST_NAMES).unwrap();
        let alice = ca.issue_client("alice").unwrap();
        let mallory = rogue.issue_client("mallory").unwrap();
        Pki {
            ca: scratch.write("ca.pem", &ca.pem()),
            server_cert: scratch.write("server.pem", &server.cert_pem),
            server_key: scratch.write("server.key", &server.key_pem),
            alice_cert: scratch.write("alice.pem", &alice.cert_pem),
            alice_key: scratch.write("alice.key", &alice.key_pem),
            mallory_cert: scratch.write("mallory.pem", &mallory.cert_pem),
            mallory_key: scratch.write("mallory.key", &mallory.key_pem),
        }
    }
}

/// The README's two-terminal try: the server makes its CA, names the file on stderr, and the
/// client trusts that file.
#[test]
fn tls_echo_works_with_the_ca_the_server_made_on_every_runtime_pair() {
    for server_rt in RUNTIMES {
        let mut server = Server::start("tls_echo_server", "tls", server_rt, &[]);
        let announced = server.log_line();
        let ca = announced
            .strip_prefix("CA certificate written to ")
            .unwrap_or_else(|| panic!("unexpected log line {announced:?}"))
            .to_owned();
        assert!(Path::new(&ca).exists());
        for client_rt in RUNTIMES {
            let out = run(
                "tls_echo_client",
                &[
                    "--connect",
                    &server.addr,
                    "--ca",
                    &ca,
                    "--message",
                    "hello",
                    "--runtime",
                    client_rt,
                ],
            );
            assert_eq!(stdout(&out), "Received: hello\n", "{}", stderr(&out));
            assert_eq!(out.status.code(), Some(0));
        }
        // By name: the host part of --connect is the name verified (localhost is in the
        // certificate), on the std client too.
        let port = server.addr.rsplit_once(':').unwrap().1;
        let out = run(
            "tls_echo_client",
            &[
                "--connect",
                &format!("localhost:{port}"),
                "--ca",
                &ca,
                "--message",
                "by name",
                "--runtime",
                "std",
            ],
        );
        assert_eq!(stdout(&out), "Received: by name\n", "{}", stderr(&out));
        let log = server.stop();
        assert!(!log.contains("failed"), "{log}");
        let _ = std::fs::remove_file(&ca);
    }
}

#[test]
fn mutual_tls_admits_a_client_from_the_ca_and_refuses_the_others() {
    let scratch = Scratch::new("mutual");
    let pki = Pki::new(&scratch);
    for rt in RUNTIMES {
        let mut server = Server::start(
            "tls_echo_server",
            "tls",
            rt,
            &[
                "--cert",
                &pki.server_cert,
                "--key",
                &pki.server_key,
                "--client-ca",
                &pki.ca,
            ],
        );
        let addr = server.addr.clone();
        let client = |extra: &[&str]| {
            let mut args = vec![
                "--connect",
                &addr,
                "--ca",
                &pki.ca,
                "--message",
                "it is me",
                "--runtime",
                rt,
            ];
            args.extend_from_slice(extra);
            run("tls_echo_client", &args)
        };
        let alice = client(&["--cert", &pki.alice_cert, "--key", &pki.alice_key]);
        assert_eq!(stdout(&alice), "Received: it is me\n", "{}", stderr(&alice));
        assert_eq!(alice.status.code(), Some(0));
        assert_eq!(server.log_line(), "client alice");

        let anonymous = client(&[]);
        assert_eq!(anonymous.status.code(), Some(1));
        assert_eq!(
            stderr(&anonymous),
            "Connection failed: TLS: certificate required (reported by the peer)\n"
        );
        let mallory = client(&["--cert", &pki.mallory_cert, "--key", &pki.mallory_key]);
        assert_eq!(mallory.status.code(), Some(1));
        assert_eq!(
            stderr(&mallory),
            "Connection failed: TLS: certificate issued by an unknown CA (reported by the peer)\n"
        );
        let log = server.stop();
        assert!(log.contains("failed: TLS: certificate required\n"), "{log}");
        assert!(
            log.contains("failed: TLS: certificate issued by an unknown CA\n"),
            "{log}"
        );
        assert!(!log.contains("client mallory"), "{log}");
    }
}

#[test]
fn a_server_certificate_from_an_unknown_ca_is_refused_with_its_reason() {
    let scratch = Scratch::new("unknown-ca");
    let pki = Pki::new(&scratch);
    for rt in RUNTIMES {
        let ca_path = scratch.path(&format!("server-ca-{rt}.pem"));
        let server = Server::start("tls_echo_server", "tls", rt, &["--write-ca", &ca_path]);
        let out = run(
            "tls_echo_client",
            &["--connect", &server.addr, "--ca", &pki.ca, "--runtime", rt],
        );
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr(&out),
            "Connection failed: TLS: certificate issued by an unknown CA\n"
        );
        assert_eq!(stdout(&out), "");
        // The wrong name is its own reason.
        let out = run(
            "tls_echo_client",
            &[
                "--connect",
                &server.addr,
                "--ca",
                &ca_path,
                "--server-name",
                "elsewhere.example",
            ],
        );
        assert_eq!(
            stderr(&out),
            "Connection failed: TLS: certificate not valid for the name\n"
        );
        let log = server.stop();
        assert!(
            log.contains("failed: TLS: "),
            "the server logs the failure: {log}"
        );
    }
}

#[test]
fn starttls_switches_mid_stream_on_every_runtime_pair() {
    let scratch = Scratch::new("starttls");
    for server_rt in RUNTIMES {
        let ca = scratch.path(&format!("ca-{server_rt}.pem"));
        let server = Server::start("starttls_server", "tcp", server_rt, &["--write-ca", &ca]);
        for client_rt in RUNTIMES {
            let out = run(
                "starttls_client",
                &[
                    "--connect",
                    &server.addr,
                    "--ca",
                    &ca,
                    "--runtime",
                    client_rt,
                ],
            );
            assert_eq!(
                stdout(&out),
                "Received: plain text\nReceived: secure text\n",
                "{}",
                stderr(&out)
            );
            assert_eq!(out.status.code(), Some(0));
        }
        let log = server.stop();
        let expected = "received: plain text\nreceived: STARTTLS\nreceived: secure text\n";
        assert_eq!(log.matches(expected).count(), RUNTIMES.len(), "{log}");
        assert!(!log.contains("failed"), "{log}");
    }
}

#[test]
fn the_mutual_tls_chat_takes_the_certificate_instead_of_the_secret() {
    let scratch = Scratch::new("chat");
    let pki = Pki::new(&scratch);
    for rt in RUNTIMES {
        let mut server = Server::start(
            "chat_server",
            "tls",
            rt,
            &[
                "--cert",
                &pki.server_cert,
                "--key",
                &pki.server_key,
                "--client-ca",
                &pki.ca,
            ],
        );
        // No AUTH line: the certificate was the credential, so the chat asks for a name at
        // once. (The echo client reads as many bytes as it sent: 19, the question's length.)
        let question = "What's your name?\r\n";
        let addr = server.addr.clone();
        let client = |extra: &[&str]| {
            let mut args = vec![
                "--connect",
                &addr,
                "--ca",
                &pki.ca,
                "--message",
                "0123456789abcdefghi",
            ];
            args.extend_from_slice(extra);
            run("tls_echo_client", &args)
        };
        let alice = client(&["--cert", &pki.alice_cert, "--key", &pki.alice_key]);
        assert_eq!(stdout(&alice), format!("Received: {question}\n"));
        assert_eq!(server.log_line(), "client alice");
        let anonymous = client(&[]);
        assert_eq!(anonymous.status.code(), Some(1));
        assert!(
            stderr(&anonymous).starts_with("Connection failed: TLS: certificate required"),
            "{}",
            stderr(&anonymous)
        );
        server.stop();
    }
}

#[test]
fn bad_certificate_flags_fail_with_one_line() {
    let scratch = Scratch::new("flags");
    let missing = scratch.path("missing.pem");
    let out = run("tls_echo_server", &["--cert", &missing, "--key", &missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!("error: cannot read {missing}: ")),
        "{}",
        stderr(&out)
    );
    // --cert without --key is a usage error.
    let out = run("tls_echo_server", &["--cert", &missing]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).lines().count(), 1);
}
