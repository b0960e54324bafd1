//! The real runtimes behind [`Harness`]: `loomwork-std`, `loomwork-smol` and `loomwork-tokio`
//! over loopback.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use loomwork::connector::{self, ClientFactory};
use loomwork::stream::{Config, Protocol, ServerFactory};

use crate::{ClientUnderTest, Harness, ServerUnderTest};

/// The runtime's own threads in this process (Linux): those named `loomwork-*`. The test
/// harness's threads come and go with the other scenarios, so they are not counted.
fn live_threads() -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let ours = tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|n| n.starts_with("loomwork"))
        })
        .count();
    Some(ours)
}

/// A loopback address that was free a moment ago: bind port 0, read it, close.
fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a probe socket on loopback");
    listener.local_addr().expect("probe address")
}

/// `loomwork-std`: a thread per connection.
pub struct Std;

impl<M: 'static> ServerUnderTest for loomwork_std::Server<M> {
    fn local_addr(&self) -> SocketAddr {
        loomwork_std::Server::local_addr(self)
    }
    fn connection_count(&self) -> usize {
        loomwork_std::Server::connection_count(self)
    }
    fn shutdown(self: Box<Self>, drain: Duration) -> (usize, usize) {
        let report = loomwork_std::Server::shutdown(*self, drain);
        (report.drained, report.aborted)
    }
}

impl<C: ClientFactory> ClientUnderTest<C> for loomwork_std::Client<C> {
    fn join(self: Box<Self>) -> C {
        loomwork_std::Client::join(*self)
    }
}

impl Harness for Std {
    const NAME: &'static str = "std";

    fn listen<F>(&self, addr: SocketAddr, factory: F, config: Config) -> Box<dyn ServerUnderTest>
    where
        F: ServerFactory + Send + 'static,
        F::Protocol: Send + 'static,
        <F::Protocol as Protocol>::Message: Send + 'static,
    {
        let config = loomwork_std::ListenConfig {
            connection: config,
            ..Default::default()
        };
        let server = loomwork_std::listen_tcp_with(addr, factory, config)
            .unwrap_or_else(|err| panic!("std: listen on {addr}: {err}"));
        Box::new(server)
    }

    fn connect<C>(
        &self,
        addr: SocketAddr,
        factory: C,
        connector: connector::Config,
    ) -> Box<dyn ClientUnderTest<C>>
    where
        C: ClientFactory + Send + 'static,
        C::Protocol: Send + 'static,
        <C::Protocol as Protocol>::Message: Send + 'static,
    {
        Box::new(loomwork_std::connect_tcp_with(
            addr,
            factory,
            connector,
            Config::default(),
        ))
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn unused_addr(&self) -> SocketAddr {
        free_addr()
    }

    fn live_workers(&self) -> Option<usize> {
        live_threads()
    }
}

/// `loomwork-smol` on smol's global executor; the test thread blocks on its futures.
pub struct Smol;

impl<M: Send + 'static> ServerUnderTest for loomwork_smol::Server<M> {
    fn local_addr(&self) -> SocketAddr {
        loomwork_smol::Server::local_addr(self)
    }
    fn connection_count(&self) -> usize {
        loomwork_smol::Server::connection_count(self)
    }
    fn shutdown(self: Box<Self>, drain: Duration) -> (usize, usize) {
        let report = smol::block_on(loomwork_smol::Server::shutdown(*self, drain));
        (report.drained, report.aborted)
    }
}

impl<C: ClientFactory + 'static> ClientUnderTest<C> for loomwork_smol::Client<C> {
    fn join(self: Box<Self>) -> C {
        smol::block_on(loomwork_smol::Client::join(*self))
    }
}

impl Harness for Smol {
    const NAME: &'static str = "smol";

    fn listen<F>(&self, addr: SocketAddr, factory: F, config: Config) -> Box<dyn ServerUnderTest>
    where
        F: ServerFactory + Send + 'static,
        F::Protocol: Send + 'static,
        <F::Protocol as Protocol>::Message: Send + 'static,
    {
        let config = loomwork_smol::ListenConfig {
            connection: config,
            ..Default::default()
        };
        let server = loomwork_smol::listen_tcp_with(addr, factory, config)
            .unwrap_or_else(|err| panic!("smol: listen on {addr}: {err}"));
        Box::new(server)
    }

    fn connect<C>(
        &self,
        addr: SocketAddr,
        factory: C,
        connector: connector::Config,
    ) -> Box<dyn ClientUnderTest<C>>
    where
        C: ClientFactory + Send + 'static,
        C::Protocol: Send + 'static,
        <C::Protocol as Protocol>::Message: Send + 'static,
    {
        Box::new(loomwork_smol::connect_tcp_with(
            addr,
            factory,
            connector,
            Config::default(),
        ))
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn unused_addr(&self) -> SocketAddr {
        free_addr()
    }

    fn live_workers(&self) -> Option<usize> {
        // Tasks are not threads: a leaked connection task shows up as a leaked descriptor,
        // which the scenarios count separately.
        live_threads()
    }
}

/// `loomwork-tokio` on one multi-thread runtime shared by every scenario of the process (two
/// workers); the test thread blocks on its futures through the runtime's handle.
pub struct Tokio {
    handle: tokio::runtime::Handle,
}

impl Tokio {
    /// The harness on the shared runtime, which is started here, before a scenario counts the
    /// process's threads and descriptors.
    pub fn new() -> Self {
        Tokio {
            handle: tokio_runtime().handle().clone(),
        }
    }
}

impl Default for Tokio {
    fn default() -> Self {
        Self::new()
    }
}

/// The runtime behind [`Tokio`]: multi-thread, two workers, IO and time enabled.
pub fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tokio-conformance")
            .enable_all()
            .build()
            .expect("start the tokio runtime")
    })
}

/// A `loomwork-tokio` server and the runtime it runs on.
struct TokioServer<M> {
    server: loomwork_tokio::Server<M>,
    handle: tokio::runtime::Handle,
}

impl<M: Send + 'static> ServerUnderTest for TokioServer<M> {
    fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }
    fn connection_count(&self) -> usize {
        self.server.connection_count()
    }
    fn shutdown(self: Box<Self>, drain: Duration) -> (usize, usize) {
        let TokioServer { server, handle } = *self;
        let report = handle.block_on(server.shutdown(drain));
        (report.drained, report.aborted)
    }
}

/// A `loomwork-tokio` client and the runtime it runs on.
struct TokioClient<C: ClientFactory> {
    client: loomwork_tokio::Client<C>,
    handle: tokio::runtime::Handle,
}

impl<C: ClientFactory + Send + 'static> ClientUnderTest<C> for TokioClient<C> {
    fn join(self: Box<Self>) -> C {
        let TokioClient { client, handle } = *self;
        handle.block_on(client.join())
    }
}

impl Harness for Tokio {
    const NAME: &'static str = "tokio";

    fn listen<F>(&self, addr: SocketAddr, factory: F, config: Config) -> Box<dyn ServerUnderTest>
    where
        F: ServerFactory + Send + 'static,
        F::Protocol: Send + 'static,
        <F::Protocol as Protocol>::Message: Send + 'static,
    {
        let config = loomwork_tokio::ListenConfig {
            connection: config,
            ..Default::default()
        };
        let server = loomwork_tokio::listen_tcp_on(&self.handle, addr, factory, config)
            .unwrap_or_else(|err| panic!("tokio: listen on {addr}: {err}"));
        Box::new(TokioServer {
            server,
            handle: self.handle.clone(),
        })
    }

    fn connect<C>(
        &self,
        addr: SocketAddr,
        factory: C,
        connector: connector::Config,
    ) -> Box<dyn ClientUnderTest<C>>
    where
        C: ClientFactory + Send + 'static,
        C::Protocol: Send + 'static,
        <C::Protocol as Protocol>::Message: Send + 'static,
    {
        let client = loomwork_tokio::connect_tcp_on(
            &self.handle,
            addr,
            factory,
            connector,
            Config::default(),
        );
        Box::new(TokioClient {
            client,
            handle: self.handle.clone(),
        })
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn unused_addr(&self) -> SocketAddr {
        free_addr()
    }

    fn live_workers(&self) -> Option<usize> {
        // As on smol: tasks are not threads; a leaked connection task shows up as a leaked
        // descriptor, which the scenarios count separately.
        live_threads()
    }
}
