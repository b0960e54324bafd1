//! The multicast examples' UniqueID exchange (docs/examples.md `multicast_server`,
//! `multicast_client`), on every runtime at once. Only inside the private network namespace of
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
    extra: &[String],
) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = example("multicast_server")
        .args(["--group", group, "--port", &port.to_string()])
        .args(["--runtime", runtime])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn multicast_server");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    let wildcard = if group.contains(':') {
        "[::]"
    } else {
        "0.0.0.0"
    };
    assert_eq!(line.trim(), format!("listening on udp {wildcard}:{port}"));
    (child, stdout)
}

/// The index of interface `name` in this namespace, from `/proc/net/if_inet6`.
fn interface_index(name: &str) -> String {
    let table = std::fs::read_to_string("/proc/net/if_inet6").expect("read /proc/net/if_inet6");
    table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(5) == Some(&name))
        .and_then(|fields| u32::from_str_radix(fields.get(1)?, 16).ok())
        .map(|index| index.to_string())
        .unwrap_or_else(|| panic!("no interface {name}"))
}

#[test]
#[ignore = "needs a private netns: scripts/netns-test.sh"]
fn unique_id_exchange_with_a_server_and_a_client_on_every_runtime() {
    assert_private_netns();
    let port = std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // IPv6 crosses the veth (lo does not carry IPv6 multicast): servers join on mc1, the
    // client sends out of mc0.
    let v6_join = vec!["--interface".to_owned(), interface_index("mc1")];
    let v6_send = vec!["--interface".to_owned(), interface_index("mc0")];
    let cases = [
        ("239.1.2.3", vec![], vec![]),
        ("224.0.0.1", vec![], vec![]),
        ("ff12::77", v6_join, v6_send),
    ];
    for (group, server_args, client_args) in cases {
        let servers = [
            start_server("std", group, port, &server_args),
            start_server("smol", group, port, &server_args),
            start_server("tokio", group, port, &server_args),
        ];
        for client_rt in ["std", "smol", "tokio"] {
            let out = example("multicast_client")
                .args(["--group", group, "--port", &port.to_string()])
                .args(["--wait-ms", "500", "--runtime", client_rt])
                .args(&client_args)
                .output()
                .expect("run multicast_client");
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "Received: data\n".repeat(3),
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
            assert_eq!(rest, "Server Received: UniqueID\n".repeat(3));
        }
    }
}
