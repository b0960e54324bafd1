//! Relays on loomwork-smol: a [`Dialer`] that runs each relay's upstream leg in the task of its
//! client leg.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

use loomwork::connector::{self, Connector};
use loomwork::relay::{Dial, Dialer, UpstreamFactory};
use loomwork::stream::Config;

use crate::client::{run, Slot};
use crate::companion::Companion;
use crate::spawn::{GlobalExecutor, Spawner};

/// A [`Dialer`] for [`RelayFactory`](loomwork::relay::RelayFactory) that connects each relay's
/// upstream leg to `upstream`, with `connector`'s attempt timeout (one attempt, no retries)
/// and the connection settings `config`.
///
/// The upstream leg runs in the client leg's own task (attached through its handle), so the
/// two legs pass their bytes without waking another task: that is what makes a relay as cheap
/// as a hand-written `copy_bidirectional`. A client leg that is not a loomwork-smol connection
/// has its upstream leg spawned on smol's global executor instead.
///
/// ```
/// use loomwork::relay::{RelayConfig, RelayFactory};
/// use loomwork::{connector, stream::Config};
///
/// smol::block_on(async {
///     let upstream = "127.0.0.1:9".parse().unwrap();
///     let dialer = loomwork_smol::relay_dialer(upstream, connector::Config::default(), Config::default());
///     let relay = RelayFactory::new(dialer, RelayConfig::default());
///     let server = loomwork_smol::listen_tcp("127.0.0.1:0".parse().unwrap(), relay)?;
///     server.shutdown(std::time::Duration::ZERO).await;
///     std::io::Result::Ok(())
/// }).unwrap();
/// ```
pub fn relay_dialer(upstream: SocketAddr, connector: connector::Config, config: Config) -> Dialer {
    relay_dialer_on(GlobalExecutor, upstream, connector, config)
}

/// [`relay_dialer`], spawning on `spawner` the upstream legs that no client leg's task takes.
pub fn relay_dialer_on<S: Spawner>(
    spawner: S,
    upstream: SocketAddr,
    connector: connector::Config,
    config: Config,
) -> Dialer {
    // One copy for every upstream leg this dialer starts.
    let config = Arc::new(config);
    Arc::new(move |dial: Dial| -> Box<dyn Any + Send> {
        let client = dial.client.clone();
        // Dropping the sender (the client leg drops the returned attempt when it ends) stops an
        // attempt still pending, as dropping a `Client` does.
        let (stop, stopped) = async_channel::bounded::<()>(1);
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
            if let Ok(companion) = job.downcast::<Companion>() {
                spawner.spawn(companion.into_future()).detach();
            }
        }
        Box::new(stop)
    })
}
