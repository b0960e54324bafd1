//! Relays on loomwork-tokio: a [`Dialer`] that runs each relay's upstream leg in the task of
//! its client leg.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

use loomwork::connector::{self, Connector};
use loomwork::relay::{Dial, Dialer, UpstreamFactory};
use loomwork::stream::Config;
use tokio::runtime;
use tokio::sync::watch;

use crate::client::{run, Slot};
use crate::companion::Companion;

/// A [`Dialer`] for [`RelayFactory`](loomwork::relay::RelayFactory) that connects each relay's
/// upstream leg to `upstream`, with `connector`'s attempt timeout (one attempt, no retries)
/// and the connection settings `config`.
///
/// The upstream leg runs in the client leg's own task (attached through its handle), so the
/// two legs pass their bytes without waking another task. A client leg that is not a
/// loomwork-tokio connection has its upstream leg spawned on the current tokio runtime
/// instead (the one the dialer is called in).
///
/// ```
/// use loomwork::relay::{RelayConfig, RelayFactory};
/// use loomwork::{connector, stream::Config};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let upstream = "127.0.0.1:9".parse().unwrap();
/// let dialer = loomwork_tokio::relay_dialer(upstream, connector::Config::default(), Config::default());
/// let relay = RelayFactory::new(dialer, RelayConfig::default());
/// let server = loomwork_tokio::listen_tcp("127.0.0.1:0".parse().unwrap(), relay)?;
/// server.shutdown(std::time::Duration::ZERO).await;
/// # std::io::Result::Ok(())
/// # }).unwrap();
/// ```
pub fn relay_dialer(upstream: SocketAddr, connector: connector::Config, config: Config) -> Dialer {
    // One copy for every upstream leg this dialer starts.
    let config = Arc::new(config);
    Arc::new(move |dial: Dial| -> Box<dyn Any + Send> {
        let client = dial.client.clone();
        let (stop, stopped) = watch::channel(false);
        let connector = Connector::new(UpstreamFactory::new(dial), connector.clone());
        let leg = run(
            upstream,
            connector,
            Arc::clone(&config),
            stopped,
            Slot::default(),
        );
        let companion = Companion::new(leg);
        if let Err(job) = client.attach(Box::new(companion)) {
            if let (Ok(companion), Ok(runtime)) =
                (job.downcast::<Companion>(), runtime::Handle::try_current())
            {
                drop(runtime.spawn(companion.into_future()));
            }
        }
        Box::new(StopOnDrop(stop))
    })
}

/// Stops a pending upstream attempt when the client leg drops it (as dropping a `Client`
/// does); a connected upstream leg runs on until the relay ends.
struct StopOnDrop(watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}
