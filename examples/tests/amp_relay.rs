//! Calls through handles from other connections, over real loopback sockets (loomwork-std):
//! a hub answers `Relay(a, b)` by asking *another* connection's peer for `Sum(a, b)` and
//! answering with what comes back. The call crosses connections twice: the deferred answer
//! travels to the other connection inside a message, and comes home inside another.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loomwork::amp::Responders;
use loomwork::amp::{errors, Amp, AmpHandler, AmpTransport, CallError, Command, Deferred};
use loomwork::connector::{ClientFactory, Retry};
use loomwork::stream::Handle;
use loomwork::Reason;
use loomwork_examples::amp::{Math, Sum, SumArgs, Total};

errors! {
    /// Why a relayed call failed.
    pub enum RelayError {
        NoPeer = "NO_PEER" => "no other connection to relay to",
        Failed = "RELAY_FAILED" => "the relayed call failed",
    }
}

/// `Relay(a, b) -> total`: `Sum(a, b)`, asked of another connection's peer.
struct Relay;
impl Command for Relay {
    const NAME: &'static str = "Relay";
    type Arguments = SumArgs;
    type Response = Total;
    type Error = RelayError;
}

/// What hub connections post to each other.
enum HubMessage {
    /// Call `Sum` on your peer and send the outcome to `reply_to`.
    Ask {
        args: SumArgs,
        reply_to: Handle<HubMessage>,
        deferred: Deferred<Relay>,
    },
    /// The outcome of an `Ask`: answer the deferred call with it.
    Answer {
        deferred: Deferred<Relay>,
        total: Result<i128, RelayError>,
    },
}

type Registry = Arc<Mutex<Vec<Handle<HubMessage>>>>;

struct Hub {
    registry: Registry,
    me: Option<u64>,
}

impl Hub {
    fn relay(
        &mut self,
        args: SumArgs,
        deferred: Deferred<Relay>,
        amp: &mut AmpTransport<'_, '_, Self>,
    ) {
        let other = self
            .registry
            .lock()
            .unwrap()
            .iter()
            .find(|h| Some(h.id()) != self.me)
            .cloned();
        let (Some(other), Some(me)) = (other, amp.handle().cloned()) else {
            let _ = amp.answer(deferred, Err(RelayError::NoPeer));
            return;
        };
        let ask = HubMessage::Ask {
            args,
            reply_to: me,
            deferred,
        };
        if let Err(HubMessage::Ask { deferred, .. }) = other.send(ask) {
            let _ = amp.answer(deferred, Err(RelayError::NoPeer));
        }
    }
}

impl AmpHandler for Hub {
    type Message = HubMessage;

    fn responders(r: &mut Responders<Self>) {
        r.add_deferred::<Relay>(Self::relay);
    }

    fn connection_made(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
        if let Some(handle) = amp.handle() {
            self.me = Some(handle.id());
            self.registry.lock().unwrap().push(handle.clone());
        }
    }

    fn message(&mut self, message: HubMessage, amp: &mut AmpTransport<'_, '_, Self>) {
        match message {
            HubMessage::Ask {
                args,
                reply_to,
                deferred,
            } => {
                if !amp.is_open() {
                    let total = Err(RelayError::Failed);
                    let _ = reply_to.send(HubMessage::Answer { deferred, total });
                    return;
                }
                // Once sent, the callback runs exactly once: with the answer, or with the
                // failure when this connection ends first. A refused call (too many in flight,
                // a full queue) drops the callback and the deferred with it: the asker then
                // waits for its own timeout or its connection's end.
                let _ = amp.call::<Sum>(args, move |_, outcome, _| {
                    let total = outcome.map(|t| t.total).map_err(|_| RelayError::Failed);
                    let _ = reply_to.send(HubMessage::Answer { deferred, total });
                });
            }
            HubMessage::Answer { deferred, total } => {
                let _ = amp.answer(deferred, total.map(|total| Total { total }));
            }
        }
    }

    fn connection_lost(&mut self, _reason: &Reason) {
        let me = self.me;
        self.registry.lock().unwrap().retain(|h| Some(h.id()) != me);
    }
}

/// The worker: Twisted's Math, answering `Sum` for whoever asks through the hub.
struct Worker;
impl ClientFactory for Worker {
    type Protocol = Amp<Math>;
    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Self::Protocol> {
        Some(Amp::new(Math::new(false)))
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        panic!("worker could not connect: {reason}");
    }
    fn connection_lost(&mut self, _reason: &Reason) -> Retry {
        Retry::Stop
    }
}

type Outcome = Arc<Mutex<Option<Result<Total, CallError<RelayError>>>>>;

/// The asker: calls `Relay(2, 3)` once, keeps the outcome, closes.
struct Asker {
    outcome: Outcome,
}
impl AmpHandler for Asker {
    type Message = ();
    fn responders(_: &mut Responders<Self>) {}
    fn connection_made(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
        amp.call::<Relay>(SumArgs { a: 2, b: 3 }, |me, outcome, amp| {
            *me.outcome.lock().unwrap() = Some(outcome);
            amp.lose_connection();
        })
        .unwrap();
    }
}
struct AskOnce {
    outcome: Outcome,
}
impl ClientFactory for AskOnce {
    type Protocol = Amp<Asker>;
    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Self::Protocol> {
        Some(Amp::new(Asker {
            outcome: self.outcome.clone(),
        }))
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        panic!("asker could not connect: {reason}");
    }
    fn connection_lost(&mut self, _reason: &Reason) -> Retry {
        Retry::Stop
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_call_is_answered_by_another_connections_peer_through_handles() {
    let registry = Registry::default();
    let hub_registry = registry.clone();
    let server = loomwork_std::listen_tcp("127.0.0.1:0".parse().unwrap(), move |_peer| {
        Amp::new(Hub {
            registry: hub_registry.clone(),
            me: None,
        })
    })
    .unwrap();
    let addr = server.local_addr();

    // Alone, the hub has nobody to relay to: the declared error comes back.
    let outcome = Outcome::default();
    loomwork_std::connect_tcp(
        addr,
        AskOnce {
            outcome: outcome.clone(),
        },
    )
    .join();
    let alone = outcome.lock().unwrap().take();
    assert!(
        matches!(alone, Some(Err(CallError::Declared(RelayError::NoPeer)))),
        "{alone:?}"
    );
    wait_for("the lone asker to leave the hub", || {
        registry.lock().unwrap().is_empty()
    });

    let worker = loomwork_std::connect_tcp(addr, Worker);
    wait_for("the worker to join the hub", || {
        registry.lock().unwrap().len() == 1
    });
    loomwork_std::connect_tcp(
        addr,
        AskOnce {
            outcome: outcome.clone(),
        },
    )
    .join();
    let relayed = outcome.lock().unwrap().take();
    assert!(
        matches!(relayed, Some(Ok(Total { total: 5 }))),
        "{relayed:?}"
    );

    worker.handle().expect("the worker is connected").close();
    worker.join();
    drop(server);
}
