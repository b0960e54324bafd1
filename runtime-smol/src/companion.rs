//! Companions: work that runs in a connection's own task, beside the connection (a relay's
//! upstream leg, attached with [`Handle::attach`](loomwork::stream::Handle::attach)).
//!
//! A relay's two legs in one task hand each other their bytes without waking another task or
//! thread: the upstream leg's read and the client leg's write happen in the same poll. The
//! set of futures and how they are polled is loomwork-net's
//! ([`Companions`](loomwork_net::companions::Companions)); this runtime keeps its own job type
//! for `attach`, so that only futures made for loomwork-smol reach its tasks.

use std::future::Future;

pub(crate) use loomwork_net::companions::Companions;
use loomwork_net::companions::{self, CompanionFuture};

/// A future the connection's task polls beside the connection until it finishes.
pub(crate) struct Companion(CompanionFuture);

impl Companion {
    /// Wraps `future` for [`Handle::attach`](loomwork::stream::Handle::attach); its output
    /// is dropped.
    pub(crate) fn new(future: impl Future + Send + 'static) -> Self {
        Companion(companions::boxed(future))
    }

    /// The future itself, to poll in a connection's task or to spawn when none takes it.
    pub(crate) fn into_future(self) -> CompanionFuture {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use loomwork::bytes::BytesMut;
    use loomwork::stream::{Protocol, Transport};

    use super::Companion;

    /// Attaches, in `connection_made`, a companion that outlives the connection by 200 ms.
    struct Host {
        accepted: Arc<AtomicUsize>,
        finished: Arc<AtomicBool>,
    }

    impl Protocol for Host {
        type Message = ();
        fn connection_made(&mut self, tx: &mut Transport<'_>) {
            let finished = Arc::clone(&self.finished);
            let companion = Companion::new(async move {
                async_io::Timer::after(Duration::from_millis(200)).await;
                finished.store(true, Ordering::SeqCst);
            });
            let handle = tx.handle().expect("the runtime gives handles");
            if handle.attach(Box::new(companion)).is_ok() {
                self.accepted.fetch_add(1, Ordering::SeqCst);
            }
            // A job of a type this runtime does not know is given back.
            assert!(handle.attach(Box::new(42u32)).is_err());
            tx.lose_connection();
        }
        fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
            data.clear();
        }
    }

    #[test]
    fn an_attached_companion_runs_to_its_end_before_shutdown_returns() {
        let accepted = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let factory = {
            let (accepted, finished) = (Arc::clone(&accepted), Arc::clone(&finished));
            move |_| Host {
                accepted: Arc::clone(&accepted),
                finished: Arc::clone(&finished),
            }
        };
        smol::block_on(async {
            let server = crate::listen_tcp("127.0.0.1:0".parse().unwrap(), factory).unwrap();
            let mut client = smol::net::TcpStream::connect(server.local_addr())
                .await
                .unwrap();
            // The connection closes at once; its companion goes on.
            let mut rest = Vec::new();
            smol::io::AsyncReadExt::read_to_end(&mut client, &mut rest)
                .await
                .unwrap();
            assert!(
                !finished.load(Ordering::SeqCst),
                "the companion outlives it"
            );
            drop(client);
            server.shutdown(Duration::from_secs(5)).await;
        });
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert!(finished.load(Ordering::SeqCst), "shutdown waited for it");
    }
}
