//! AMP over each runtime (issue 16): the `amp_server` example's machine answering pipelined
//! calls out of order, every answer reaching its own caller once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loomwork::amp::{Amp, AmpHandler, AmpTransport, Responders};
use loomwork::connector::{ClientFactory, Retry};
use loomwork::stream::Config;
use loomwork::Reason;
use loomwork_examples::amp::{Delayed, DelayedAnswer, DelayedArgs, Math};

use super::{any_port, connector};
use crate::protocols::{lock, LoggingFactory};
use crate::Harness;

const CALLS: i64 = 200;

#[derive(Default)]
struct Seen {
    order: Vec<i64>,
    wrong: Vec<String>,
    lost: Vec<Reason>,
}

/// Calls `Delayed` `CALLS` times at once, later calls with shorter delays; closes once every
/// answer is in.
struct Caller {
    seen: Arc<Mutex<Seen>>,
}

impl AmpHandler for Caller {
    type Message = ();
    fn responders(_: &mut Responders<Self>) {}
    fn connection_made(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
        for i in 0..CALLS {
            let args = DelayedArgs {
                a: i,
                delay_ms: (CALLS - i) % 17 * 3,
            };
            let sent = amp.call::<Delayed>(args, move |me, outcome, amp| {
                let mut seen = lock(&me.seen);
                match outcome {
                    Ok(DelayedAnswer { a }) if a == i => seen.order.push(i),
                    other => seen.wrong.push(format!("call {i}: {other:?}")),
                }
                if amp.outstanding() == 0 {
                    amp.lose_connection();
                }
            });
            if let Err(refused) = sent {
                lock(&self.seen)
                    .wrong
                    .push(format!("call {i} refused: {refused}"));
            }
        }
    }
}

struct CallOnce {
    seen: Arc<Mutex<Seen>>,
}

impl ClientFactory for CallOnce {
    type Protocol = Amp<Caller>;
    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Self::Protocol> {
        Some(Amp::new(Caller {
            seen: Arc::clone(&self.seen),
        }))
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        lock(&self.seen).lost.push(reason.clone());
        Retry::Stop
    }
    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        lock(&self.seen).lost.push(reason.clone());
        Retry::Stop
    }
}

/// 200 pipelined AMP calls that the server answers out of order (shorter delays overtake
/// longer ones) each reach their own caller exactly once; both sides then end cleanly.
pub fn amp_pipelined_calls_answered_out_of_order_reach_their_callers_once<H: Harness>(h: &H) {
    let (factory, server_log) = LoggingFactory::new(|| Some(Amp::new(Math::new(false))));
    let server = h.listen(any_port(), factory, Config::default());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let client = CallOnce {
        seen: Arc::clone(&seen),
    };
    h.connect(server.local_addr(), client, connector()).join();
    let seen = lock(&seen);
    assert!(seen.wrong.is_empty(), "{}: {:?}", H::NAME, seen.wrong);
    let mut sorted = seen.order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..CALLS).collect::<Vec<_>>(), "{}", H::NAME);
    assert_ne!(
        seen.order,
        sorted,
        "{}: answers came back in order",
        H::NAME
    );
    assert_eq!(seen.lost, [Reason::Done], "{}", H::NAME);
    drop(seen);
    server.shutdown(Duration::from_secs(5));
    assert_eq!(lock(&server_log).closed, [Reason::Done], "{}", H::NAME);
}
