//! The UDP examples behave as docs/examples.md says: spawned as a user would run them, on both
//! runtimes, over loopback only. (Multicast examples run in scripts/netns-test.sh.)

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

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

/// Starts `udp_echo` on a free port and reads its `listening on udp ADDR` line.
fn start_echo(runtime: &str) -> (Child, SocketAddr) {
    let mut child = example("udp_echo")
        .args(["--listen", "127.0.0.1:0", "--runtime", runtime])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn udp_echo");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let addr = line
        .trim()
        .strip_prefix("listening on udp ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    (child, addr)
}

/// SIGINT, as Ctrl-C would send it.
fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn helloer(runtime: &str, target: &str, extra: &[&str]) -> Output {
    example("udp_helloer")
        .args(["--connect", target, "--runtime", runtime])
        .args(extra)
        .output()
        .expect("run udp_helloer")
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn helloer_gets_its_echo_on_every_runtime_pair() {
    for server_rt in ["std", "smol", "tokio"] {
        let (mut server, addr) = start_echo(server_rt);
        for client_rt in ["std", "smol", "tokio"] {
            let out = helloer(client_rt, &addr.to_string(), &[]);
            assert_eq!(
                stdout_lines(&out),
                [
                    format!("we can only send to {addr} now"),
                    format!("received hello from {addr}"),
                ],
                "server {server_rt}, client {client_rt}"
            );
            assert_eq!(out.status.code(), Some(0));
        }
        interrupt(&server);
        let status = server.wait().expect("wait");
        assert_eq!(status.code(), Some(0), "udp_echo exits 0 on SIGINT");
        let mut log = String::new();
        let mut stderr = server.stderr.take().expect("piped stderr");
        std::io::Read::read_to_string(&mut stderr, &mut log).expect("stderr");
        assert_eq!(
            log.matches("received hello from 127.0.0.1:").count(),
            3,
            "{log}"
        );
    }
}

#[test]
fn helloer_says_no_one_listening_on_icmp_refusal() {
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for rt in ["std", "smol", "tokio"] {
        let out = helloer(rt, &closed.to_string(), &[]);
        assert_eq!(
            stdout_lines(&out),
            [
                format!("we can only send to {closed} now"),
                "No one listening".into()
            ]
        );
        assert_eq!(out.status.code(), Some(1));
    }
}

#[test]
fn helloer_gives_up_when_nobody_answers() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    for rt in ["std", "smol", "tokio"] {
        let out = helloer(rt, &addr.to_string(), &["--wait-ms", "200"]);
        assert_eq!(
            stdout_lines(&out),
            [format!("we can only send to {addr} now"), "no reply".into()]
        );
        assert_eq!(out.status.code(), Some(1));
    }
}

#[test]
fn helloer_resolves_a_host_name_first() {
    let (mut server, addr) = start_echo("std");
    let out = helloer("smol", &format!("localhost:{}", addr.port()), &[]);
    let lines = stdout_lines(&out);
    // `localhost` may resolve to ::1 first, where nobody listens: then the port is refused.
    if lines[0] == format!("we can only send to {addr} now") {
        assert_eq!(lines[1], format!("received hello from {addr}"));
    } else {
        let v6 = format!("[::1]:{}", addr.port());
        assert_eq!(
            lines,
            [
                format!("we can only send to {v6} now"),
                "No one listening".into()
            ]
        );
    }
    interrupt(&server);
    server.wait().expect("wait");
}

#[test]
fn resolve_prints_each_address_and_fails_with_the_contract_line() {
    for rt in ["std", "smol", "tokio"] {
        let out = example("resolve")
            .args(["::1", "--runtime", rt])
            .output()
            .unwrap();
        assert_eq!(stdout_lines(&out), ["::1"]);
        let out = example("resolve")
            .args(["localhost", "--runtime", rt])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let lines = stdout_lines(&out);
        assert!(!lines.is_empty());
        assert!(
            lines.iter().all(|l| l == "127.0.0.1" || l == "::1"),
            "{lines:?}"
        );
        let out = example("resolve")
            .args(["", "--runtime", rt])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "DNS lookup failed: \n"
        );
    }
}

#[test]
fn bad_flags_are_one_line_errors_with_status_2() {
    for name in [
        "udp_echo",
        "udp_helloer",
        "multicast_server",
        "multicast_client",
        "resolve",
    ] {
        let out = example(name).arg("--no-such-flag").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).lines().count(),
            1,
            "{name}"
        );
    }
}
