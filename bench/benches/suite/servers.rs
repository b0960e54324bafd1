//! Every server the suite measures: loomwork on each adapter and the peers, each started in this
//! process on a loopback port and kept until the process ends.
//!
//! smol servers (loomwork's and the plain one alike) share one `async_executor::Executor` run by
//! one thread per core, and the tokio servers (loomwork-tokio's and the plain ones alike) share
//! one multi-thread runtime with one worker per core, so every async server has the same cores
//! to work with.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, OnceLock};
use std::thread;

use async_executor::Executor;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use loomwork::datagram::{DatagramProtocol, DatagramTransport};
use loomwork::framing::{FrameHandler, FrameTransport, Framed, LengthCodec, LineCodec};
use loomwork::stream::{Protocol, Transport};

/// Any loopback port.
pub(crate) fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Worker threads for the async servers: one per core.
fn cores() -> usize {
    thread::available_parallelism().map_or(2, |n| n.get())
}

/// Threads driving the smol executor: one per core, or `LOOMWORK_SUITE_SMOL_THREADS`.
fn smol_threads() -> usize {
    std::env::var("LOOMWORK_SUITE_SMOL_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(cores)
}

/// The executor all smol servers run on, with one thread per core driving it (and the reactor).
pub(crate) fn smol_executor() -> &'static Arc<Executor<'static>> {
    static EXECUTOR: OnceLock<Arc<Executor<'static>>> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        let ex = Arc::new(Executor::new());
        for i in 0..smol_threads() {
            let ex = Arc::clone(&ex);
            thread::Builder::new()
                .name(format!("smol-{i}"))
                .spawn(move || async_io::block_on(ex.run(futures_lite::future::pending::<()>())))
                .expect("spawn smol executor thread");
        }
        ex
    })
}

/// A second smol executor driven by a single thread, for `loomwork-smol/1t`: no task ever hops
/// threads, which trades throughput under load for latency at low load.
pub(crate) fn smol_single_thread() -> &'static Arc<Executor<'static>> {
    static EXECUTOR: OnceLock<Arc<Executor<'static>>> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        let ex = Arc::new(Executor::new());
        let runner = Arc::clone(&ex);
        thread::Builder::new()
            .name("smol-1t".into())
            .spawn(move || async_io::block_on(runner.run(futures_lite::future::pending::<()>())))
            .expect("spawn smol executor thread");
        ex
    })
}

/// The tokio runtime all tokio servers run on.
pub(crate) fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores())
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// Which TCP echo server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tcp {
    /// loomwork on `loomwork-smol`.
    LoomworkSmol,
    /// loomwork on `loomwork-smol`, on an executor of its own with a single thread.
    LoomworkSmolOneThread,
    /// loomwork on `loomwork-std`.
    LoomworkStd,
    /// loomwork on `loomwork-tokio`, on the runtime the plain tokio servers use.
    LoomworkTokio,
    /// Plain smol: `smol::io::copy` per connection.
    PlainSmol,
    /// Plain std: a thread per connection, read then write_all.
    PlainStd,
    /// Plain tokio: `tokio::io::copy` per connection.
    Tokio,
}

impl Tcp {
    /// Every TCP echo server, loomwork's first.
    pub(crate) const ALL: [Tcp; 7] = [
        Tcp::LoomworkSmol,
        Tcp::LoomworkSmolOneThread,
        Tcp::LoomworkStd,
        Tcp::LoomworkTokio,
        Tcp::PlainSmol,
        Tcp::PlainStd,
        Tcp::Tokio,
    ];

    /// The name shown in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tcp::LoomworkSmol => "loomwork-smol",
            Tcp::LoomworkSmolOneThread => "loomwork-smol/1t",
            Tcp::LoomworkStd => "loomwork-std",
            Tcp::LoomworkTokio => "loomwork-tokio",
            Tcp::PlainSmol => "smol",
            Tcp::PlainStd => "std",
            Tcp::Tokio => "tokio",
        }
    }

    /// Parses [`Tcp::name`].
    pub(crate) fn from_name(name: &str) -> Option<Tcp> {
        Tcp::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Starts this echo server; it runs until the process ends.
    pub(crate) fn start(self) -> SocketAddr {
        match self {
            Tcp::LoomworkSmol | Tcp::LoomworkSmolOneThread => {
                let executor = if self == Tcp::LoomworkSmol {
                    smol_executor()
                } else {
                    smol_single_thread()
                };
                let server = loomwork_smol::listen_tcp_on(
                    executor,
                    loopback(),
                    |_| Echo,
                    loomwork_smol::ListenConfig::default(),
                )
                .expect("listen");
                let addr = server.local_addr();
                std::mem::forget(server);
                addr
            }
            Tcp::LoomworkStd => {
                let server = loomwork_std::listen_tcp(loopback(), |_| Echo).expect("listen");
                let addr = server.local_addr();
                std::mem::forget(server);
                addr
            }
            Tcp::LoomworkTokio => {
                let server = loomwork_tokio::listen_tcp_on(
                    tokio_runtime().handle(),
                    loopback(),
                    |_| Echo,
                    loomwork_tokio::ListenConfig::default(),
                )
                .expect("listen");
                let addr = server.local_addr();
                std::mem::forget(server);
                addr
            }
            Tcp::PlainSmol => plain_smol_echo(),
            Tcp::PlainStd => plain_std_echo(),
            Tcp::Tokio => tokio_echo(),
        }
    }
}

/// The echo protocol every loomwork TCP server runs: hand the received bytes back, no copy.
struct Echo;

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

fn plain_smol_echo() -> SocketAddr {
    let listener = std::net::TcpListener::bind(loopback()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let listener = smol::net::TcpListener::try_from(listener).expect("async listener");
    let ex = smol_executor();
    let spawner = Arc::clone(ex);
    ex.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            spawner
                .spawn(async move {
                    let _ = smol::io::copy(stream.clone(), &mut stream.clone()).await;
                })
                .detach();
        }
    })
    .detach();
    addr
}

fn plain_std_echo() -> SocketAddr {
    let listener = TcpListener::bind(loopback()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut buf = vec![0; 64 * 1024];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    if stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn tokio_echo() -> SocketAddr {
    let rt = tokio_runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(loopback()))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    addr
}

/// The framings of the framed runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `\n`-terminated lines.
    Line,
    /// A 4-byte big-endian length, then the payload.
    Int32,
}

/// Which framed echo server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FramedServer {
    /// loomwork `Framed` on `loomwork-smol`.
    LoomworkSmol,
    /// loomwork `Framed` on `loomwork-std`.
    LoomworkStd,
    /// loomwork `Framed` on `loomwork-tokio`.
    LoomworkTokio,
    /// tokio-util `Framed` (`LinesCodec` / `LengthDelimitedCodec`), stream forwarded to sink.
    TokioUtil,
}

impl FramedServer {
    /// Every framed server, loomwork's first.
    pub(crate) const ALL: [FramedServer; 4] = [
        FramedServer::LoomworkSmol,
        FramedServer::LoomworkStd,
        FramedServer::LoomworkTokio,
        FramedServer::TokioUtil,
    ];

    /// The name shown in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FramedServer::LoomworkSmol => "loomwork-smol Framed",
            FramedServer::LoomworkStd => "loomwork-std Framed",
            FramedServer::LoomworkTokio => "loomwork-tokio Framed",
            FramedServer::TokioUtil => "tokio-util Framed",
        }
    }

    /// Starts a framed echo server with `framing`.
    pub(crate) fn start(self, framing: Framing) -> SocketAddr {
        match (self, framing) {
            (FramedServer::LoomworkSmol, Framing::Line) => lw_smol_framed(line_codec),
            (FramedServer::LoomworkSmol, Framing::Int32) => lw_smol_framed(LengthCodec::int32),
            (FramedServer::LoomworkStd, Framing::Line) => lw_std_framed(line_codec),
            (FramedServer::LoomworkStd, Framing::Int32) => lw_std_framed(LengthCodec::int32),
            (FramedServer::LoomworkTokio, Framing::Line) => lw_tokio_framed(line_codec),
            (FramedServer::LoomworkTokio, Framing::Int32) => lw_tokio_framed(LengthCodec::int32),
            (FramedServer::TokioUtil, framing) => tokio_util_framed(framing),
        }
    }
}

fn line_codec() -> LineCodec {
    LineCodec::new()
        .with_delimiter("\n")
        .expect("a one-byte delimiter is valid")
}

/// Sends every frame straight back.
struct FrameEcho<C>(std::marker::PhantomData<C>);

impl<C: loomwork::framing::Decoder + loomwork::framing::Encoder> FrameHandler for FrameEcho<C> {
    type Codec = C;
    type Message = ();
    fn frame_received(&mut self, frame: Bytes, tx: &mut FrameTransport<'_, '_, C>) {
        let _ = tx.send_frame(frame);
    }
}

fn lw_smol_framed<C>(codec: fn() -> C) -> SocketAddr
where
    C: loomwork::framing::Decoder + loomwork::framing::Encoder + Send + 'static,
{
    let server = loomwork_smol::listen_tcp_on(
        smol_executor(),
        loopback(),
        move |_| Framed::new(FrameEcho(std::marker::PhantomData), codec()),
        loomwork_smol::ListenConfig::default(),
    )
    .expect("listen");
    let addr = server.local_addr();
    std::mem::forget(server);
    addr
}

fn lw_std_framed<C>(codec: fn() -> C) -> SocketAddr
where
    C: loomwork::framing::Decoder + loomwork::framing::Encoder + Send + 'static,
{
    let server = loomwork_std::listen_tcp(loopback(), move |_| {
        Framed::new(FrameEcho(std::marker::PhantomData), codec())
    })
    .expect("listen");
    let addr = server.local_addr();
    std::mem::forget(server);
    addr
}

fn lw_tokio_framed<C>(codec: fn() -> C) -> SocketAddr
where
    C: loomwork::framing::Decoder + loomwork::framing::Encoder + Send + 'static,
{
    let server = loomwork_tokio::listen_tcp_on(
        tokio_runtime().handle(),
        loopback(),
        move |_| Framed::new(FrameEcho(std::marker::PhantomData), codec()),
        loomwork_tokio::ListenConfig::default(),
    )
    .expect("listen");
    let addr = server.local_addr();
    std::mem::forget(server);
    addr
}

/// The idiomatic tokio-util echo: `stream.forward(sink)`, which feeds frames and flushes only
/// when no more are ready.
fn tokio_util_framed(framing: Framing) -> SocketAddr {
    use tokio_util::codec::{Framed, LengthDelimitedCodec, LinesCodec};
    let rt = tokio_runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(loopback()))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                match framing {
                    Framing::Line => {
                        let (sink, stream) = Framed::new(stream, LinesCodec::new()).split();
                        let _ = stream.forward(sink).await;
                    }
                    Framing::Int32 => {
                        let (sink, stream) =
                            Framed::new(stream, LengthDelimitedCodec::new()).split();
                        let _ = stream.map(|f| f.map(BytesMut::freeze)).forward(sink).await;
                    }
                }
            });
        }
    });
    addr
}

/// Which UDP echo server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Udp {
    /// loomwork on `loomwork-smol`.
    LoomworkSmol,
    /// loomwork on `loomwork-std`.
    LoomworkStd,
    /// loomwork on `loomwork-tokio`.
    LoomworkTokio,
    /// Plain smol: `recv_from` then `send_to` in one task.
    PlainSmol,
    /// Plain std: a blocking thread, `recv_from` then `send_to`.
    PlainStd,
    /// Plain tokio: `recv_from` then `send_to` in one task.
    Tokio,
}

impl Udp {
    /// Every UDP echo server, loomwork's first.
    pub(crate) const ALL: [Udp; 6] = [
        Udp::LoomworkSmol,
        Udp::LoomworkStd,
        Udp::LoomworkTokio,
        Udp::PlainSmol,
        Udp::PlainStd,
        Udp::Tokio,
    ];

    /// The name shown in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Udp::LoomworkSmol => "loomwork-smol",
            Udp::LoomworkStd => "loomwork-std",
            Udp::LoomworkTokio => "loomwork-tokio",
            Udp::PlainSmol => "smol",
            Udp::PlainStd => "std",
            Udp::Tokio => "tokio",
        }
    }

    /// Starts this UDP echo server.
    pub(crate) fn start(self) -> SocketAddr {
        match self {
            Udp::LoomworkSmol => {
                let socket = UdpSocket::bind(loopback()).expect("bind");
                let addr = socket.local_addr().expect("addr");
                let (poster, run) =
                    loomwork_smol::udp::endpoint(socket, UdpEcho, Default::default())
                        .expect("endpoint");
                smol_executor().spawn(run).detach();
                std::mem::forget(poster);
                addr
            }
            Udp::LoomworkStd => {
                let handle = loomwork_std::listen_udp(loopback(), UdpEcho).expect("listen");
                let addr = handle.local_addr();
                std::mem::forget(handle);
                addr
            }
            Udp::LoomworkTokio => {
                let rt = tokio_runtime();
                let _entered = rt.enter();
                let handle = loomwork_tokio::listen_udp(loopback(), UdpEcho).expect("listen");
                let addr = handle.local_addr();
                std::mem::forget(handle);
                addr
            }
            Udp::PlainSmol => {
                let socket =
                    smol::net::UdpSocket::try_from(UdpSocket::bind(loopback()).expect("bind"))
                        .expect("async socket");
                let addr = socket.local_addr().expect("addr");
                smol_executor()
                    .spawn(async move {
                        let mut buf = vec![0; 65536];
                        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                            let _ = socket.send_to(&buf[..n], from).await;
                        }
                    })
                    .detach();
                addr
            }
            Udp::PlainStd => {
                let socket = UdpSocket::bind(loopback()).expect("bind");
                let addr = socket.local_addr().expect("addr");
                thread::spawn(move || {
                    let mut buf = vec![0; 65536];
                    while let Ok((n, from)) = socket.recv_from(&mut buf) {
                        let _ = socket.send_to(&buf[..n], from);
                    }
                });
                addr
            }
            Udp::Tokio => {
                let rt = tokio_runtime();
                let socket = rt
                    .block_on(tokio::net::UdpSocket::bind(loopback()))
                    .expect("bind");
                let addr = socket.local_addr().expect("addr");
                rt.spawn(async move {
                    let mut buf = vec![0; 65536];
                    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                        let _ = socket.send_to(&buf[..n], from).await;
                    }
                });
                addr
            }
        }
    }
}

/// The datagram echo every loomwork UDP server runs.
struct UdpEcho;

impl DatagramProtocol for UdpEcho {
    type Message = ();
    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        _truncated: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        let _ = tx.send_to(data, from);
    }
}
