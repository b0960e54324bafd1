//! The multicast examples' UniqueID exchange (EXAMPLES.md `multicast_server`,
//! `multicast_client`), on both runtimes at once. Only inside the private network namespace of
//! `scripts/netns-test.sh`: the test fails loudly anywhere else.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The built example binary, next to this test's `deps` directory.
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

/// Fails unless the namespace holds exactly the interfaces netns-setup.sh creates.
fn assert_private_netns() {
    let table = std::fs::read_to_string("/proc/net/dev").expect("read /proc/net/dev");
    let mut names: Vec<&str> = table
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(str::trim)
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["lo", "mc0", "mc1"],
        "run inside the private network namespace of scripts/netns-test.sh"
    );
}

fn start_server(
    runtime: &str,
    group: &str,
    port: u16,
) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = example("multicast_server")
        .args([
            "--group",
            group,
            "--port",
            &port.to_string(),
            "--runtime",
            runtime,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn multicast_server");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), format!("listening on udp 0.0.0.0:{port}"));
    (child, stdout)
}

#[test]
#[ignore = "needs a private netns: scripts/netns-test.sh"]
fn unique_id_exchange_with_two_servers_on_both_runtimes() {
    assert_private_netns();
    let port = std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for group in ["239.1.2.3", "224.0.0.1"] {
        let servers = [
            start_server("std", group, port),
            start_server("smol", group, port),
        ];
        for client_rt in ["std", "smol"] {
            let out = example("multicast_client")
                .args([
                    "--group",
                    group,
                    "--port",
                    &port.to_string(),
                    "--wait-ms",
                    "500",
                ])
                .args(["--runtime", client_rt])
                .output()
                .expect("run multicast_client");
            assert_eq!(out.status.code(), Some(0));
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "Received: data\nReceived: data\n",
                "one answer per server, group {group}, client {client_rt}"
            );
        }
        for (mut child, mut stdout) in servers {
            let status = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
            assert_eq!(child.wait().expect("wait").code(), Some(0));
            let mut rest = String::new();
            stdout.read_to_string(&mut rest).expect("stdout");
            assert_eq!(rest, "Server Received: UniqueID\n".repeat(2));
        }
    }
}
