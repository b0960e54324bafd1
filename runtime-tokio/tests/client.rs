//! The client side over loopback: refused attempts, reconnecting once the server is back,
//! stopping (Twisted FA-1, RC-2, RC-7, ER-2).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bounded, bounded_on, closed_port, current_thread, multi_thread, within_bound, Echo};
use loomwork::bytes::BytesMut;
use loomwork::connector::{self, BackoffConfig, ClientFactory, Retry};
use loomwork::stream::{Config, Protocol, Transport};
use loomwork::Reason;
use loomwork_tokio::{connect_tcp, connect_tcp_with, listen_tcp};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Sends a greeting, closes once it is echoed back, and logs how that went.
struct Greeter {
    log: Arc<Mutex<Vec<String>>>,
}

impl Protocol for Greeter {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        tx.write_slice(b"hello").unwrap();
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        if data.len() >= 5 {
            self.log
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&data.split()).into_owned());
            tx.lose_connection();
        }
    }
    fn connection_lost(&mut self, reason: &Reason) {
        self.log.lock().unwrap().push(format!("lost: {reason}"));
    }
}

/// Records failures and losses; retries failures after a fixed delay up to `retries` times.
struct Recorder {
    failures: Vec<Reason>,
    losses: Vec<Reason>,
    retries: usize,
    failed: UnboundedSender<()>,
    log: Arc<Mutex<Vec<String>>>,
}

impl ClientFactory for Recorder {
    type Protocol = Greeter;
    fn build_protocol(&mut self, _: SocketAddr) -> Option<Greeter> {
        Some(Greeter {
            log: Arc::clone(&self.log),
        })
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        self.failures.push(reason.clone());
        let _ = self.failed.send(());
        if self.failures.len() <= self.retries {
            Retry::After(Duration::from_millis(20))
        } else {
            Retry::Stop
        }
    }
    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        self.losses.push(reason.clone());
        Retry::Stop
    }
}

fn recorder(retries: usize) -> (Recorder, UnboundedReceiver<()>) {
    let (failed, failures) = unbounded_channel();
    let factory = Recorder {
        failures: Vec::new(),
        losses: Vec::new(),
        retries,
        failed,
        log: Arc::default(),
    };
    (factory, failures)
}

#[test]
fn refused_connect_reports_refused_to_connection_failed() {
    bounded(async {
        let (factory, _) = recorder(0);
        let factory = connect_tcp(closed_port(), factory).join().await;
        assert_eq!(factory.failures, vec![Reason::Refused]);
        assert!(factory.losses.is_empty());
    });
}

#[test]
fn reconnects_once_the_server_comes_back() {
    bounded(async {
        let addr = closed_port();
        let (factory, mut failures) = recorder(1000);
        let client = connect_tcp(addr, factory);
        // At least one refused attempt, then the server appears on the same address.
        failures.recv().await.unwrap();
        let server = listen_tcp(addr, |_| Echo).unwrap();
        let factory = client.join().await;
        assert!(!factory.failures.is_empty());
        assert!(factory.failures.iter().all(|r| *r == Reason::Refused));
        assert_eq!(factory.losses, vec![Reason::Done]);
        assert_eq!(
            *factory.log.lock().unwrap(),
            vec!["hello".to_string(), format!("lost: {}", Reason::Done)]
        );
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn stop_trying_ends_a_client_waiting_to_retry() {
    bounded(async {
        let (factory, mut failures) = recorder(usize::MAX);
        let config = connector::Config {
            backoff: BackoffConfig::default(),
            ..connector::Config::default()
        };
        // Retry::After(20 ms) keeps it cycling until told to stop.
        let client = connect_tcp_with(closed_port(), factory, config, Config::default());
        failures.recv().await.unwrap();
        assert!(client.handle().is_none());
        client.stop_trying();
        let factory = client.join().await;
        assert!(!factory.failures.is_empty());
    });
}

/// Keeps the connection open until told to stop by a handle message.
struct Waiter;

impl Protocol for Waiter {
    type Message = &'static str;
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_, &'static str>) {
        data.clear();
    }
    fn message(&mut self, message: &'static str, tx: &mut Transport<'_, &'static str>) {
        if message == "bye" {
            tx.lose_connection();
        }
    }
}

struct Reconnecting {
    connected: UnboundedSender<()>,
    losses: usize,
}

impl ClientFactory for Reconnecting {
    type Protocol = Waiter;
    fn build_protocol(&mut self, _: SocketAddr) -> Option<Waiter> {
        let _ = self.connected.send(());
        Some(Waiter)
    }
    fn connection_lost(&mut self, _: &Reason) -> Retry {
        self.losses += 1;
        Retry::After(Duration::ZERO)
    }
}

#[test]
fn stop_trying_while_connected_keeps_the_connection_then_stops() {
    bounded(async {
        let server = listen_tcp(common::any_port(), |_| Echo).unwrap();
        let (connected, mut up) = unbounded_channel();
        let client = connect_tcp(
            server.local_addr(),
            Reconnecting {
                connected,
                losses: 0,
            },
        );
        up.recv().await.unwrap();
        let handle = loop {
            if let Some(handle) = client.handle() {
                break handle;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        client.stop_trying();
        // RC-7: still connected after stop_trying; the handle still reaches the protocol.
        handle.send("bye").unwrap();
        let factory = client.join().await;
        assert_eq!(factory.losses, 1);
        assert!(up.try_recv().is_err(), "no reconnect after stop_trying");
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn attempt_times_out_when_the_server_never_answers() {
    bounded(async {
        // A listener that never accepts, with its accept queue full: Linux drops further
        // SYNs, so the next handshake never completes (all on loopback).
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&common::any_port().into()).unwrap();
        socket.listen(0).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..2 {
            let filler =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            filler.set_nonblocking(true).unwrap();
            let _ = filler.connect(&addr.into());
            fillers.push(filler);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;

        let (factory, _) = recorder(0);
        let config = connector::Config {
            connect_timeout: Some(Duration::from_millis(200)),
            ..connector::Config::default()
        };
        let factory = connect_tcp_with(addr, factory, config, Config::default())
            .join()
            .await;
        assert_eq!(
            factory.failures,
            vec![Reason::TimedOut(loomwork::Timeout::Connect)]
        );
        drop(fillers);
    });
}

/// A client factory holding an `Rc`: only a `LocalSet` can run it.
struct RcFactory {
    log: std::rc::Rc<std::cell::RefCell<Vec<String>>>,
    shared: Arc<Mutex<Vec<String>>>,
}

impl ClientFactory for RcFactory {
    type Protocol = Greeter;
    fn build_protocol(&mut self, _: SocketAddr) -> Option<Greeter> {
        self.log.borrow_mut().push("built".into());
        Some(Greeter {
            log: Arc::clone(&self.shared),
        })
    }
}

#[test]
fn client_with_rc_factory_runs_on_a_local_set() {
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    local.block_on(
        &rt,
        within_bound(async {
            let server = listen_tcp(common::any_port(), |_| Echo).unwrap();
            let factory = RcFactory {
                log: std::rc::Rc::clone(&log),
                shared: Arc::default(),
            };
            let client = loomwork_tokio::connect_tcp_local(
                &local,
                server.local_addr(),
                factory,
                connector::Config::default(),
                Config::default(),
            );
            let factory = client.join().await;
            assert_eq!(factory.shared.lock().unwrap()[0], "hello");
            server.shutdown(Duration::from_secs(5)).await;
        }),
    );
    assert_eq!(*log.borrow(), vec!["built".to_string()]);
}

#[test]
fn client_started_from_another_thread_runs_on_the_given_runtime() {
    let rt = multi_thread();
    let server = loomwork_tokio::listen_tcp_on(
        rt.handle(),
        common::any_port(),
        |_| Echo,
        Default::default(),
    )
    .unwrap();
    let (factory, _) = recorder(0);
    let client = loomwork_tokio::connect_tcp_on(
        rt.handle(),
        server.local_addr(),
        factory,
        connector::Config::default(),
        Config::default(),
    );
    bounded_on(&rt, async {
        let factory = client.join().await;
        assert_eq!(factory.losses, vec![Reason::Done]);
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn server_and_client_handles_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<loomwork_tokio::Server<String>>();
    assert_send::<loomwork_tokio::Client<Recorder>>();
}
