//! AMP under the layers every protocol gets: inside TLS (`loomwork-tls`) and under a policy
//! (idle timeout), unchanged, in memory on the core's test kit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use loomwork::amp::{Amp, AmpHandler, AmpTransport, CallError, NoError, Responders};
use loomwork::policy::IdleTimeout;
use loomwork::testing::{Pair, PairConfig};
use loomwork::{Reason, Timeout};
use loomwork_examples::amp::Total;
use loomwork_examples::amp::{Divide, DivideArgs, DivideError, Math, Quotient, Sum, SumArgs};
use loomwork_tls::rustls::pki_types::ServerName;
use loomwork_tls::{client_config, server_config, SelfSignedCa, Tls, LOCALHOST_NAMES};

type Log = Arc<Mutex<Vec<String>>>;

/// Calls Sum and Divide-by-zero, logs the outcomes, closes once both are in.
struct Client {
    log: Log,
    close_when_done: bool,
}

impl Client {
    fn summed(
        &mut self,
        r: Result<Total, CallError<NoError>>,
        amp: &mut AmpTransport<'_, '_, Self>,
    ) {
        self.log
            .lock()
            .unwrap()
            .push(format!("sum {:?}", r.map(|t| t.total)));
        self.maybe_close(amp);
    }
    fn divided(
        &mut self,
        r: Result<Quotient, CallError<DivideError>>,
        amp: &mut AmpTransport<'_, '_, Self>,
    ) {
        self.log
            .lock()
            .unwrap()
            .push(format!("divide {:?}", r.map(|q| q.result)));
        self.maybe_close(amp);
    }
    fn maybe_close(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
        if self.close_when_done && amp.outstanding() == 0 {
            amp.lose_connection();
        }
    }
}

impl AmpHandler for Client {
    type Message = ();
    fn responders(_: &mut Responders<Self>) {}
    fn connection_made(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
        amp.call::<Sum>(SumArgs { a: 13, b: 81 }, Self::summed)
            .unwrap();
        let args = DivideArgs {
            numerator: 1234,
            denominator: 0,
        };
        amp.call::<Divide>(args, Self::divided).unwrap();
    }
    fn connection_lost(&mut self, reason: &Reason) {
        self.log.lock().unwrap().push(format!("lost {reason}"));
    }
}

const EXPECTED: [&str; 2] = ["sum Ok(94)", "divide Err(Declared(ZeroDivision))"];

#[test]
fn amp_runs_inside_tls_unchanged() {
    let ca = SelfSignedCa::new("amp test CA").unwrap();
    let leaf = ca
        .issue_server(LOCALHOST_NAMES)
        .unwrap()
        .identity()
        .unwrap();
    let server_tls = server_config(leaf.chain, leaf.key, None, &[]).unwrap();
    let client_tls = client_config(ca.roots(), None, &[]).unwrap();
    let log = Log::default();
    let client_log = log.clone();
    let client = Tls::client(
        client_tls,
        ServerName::try_from("localhost").unwrap(),
        move |_| {
            Amp::new(Client {
                log: client_log,
                close_when_done: true,
            })
        },
    );
    let server = Tls::server(server_tls, |_| Amp::new(Math::new(false)));
    let mut pair = Pair::new(client, server, PairConfig::default());
    assert!(pair.run(Duration::from_secs(30)), "both sides close");
    let log = log.lock().unwrap().clone();
    assert_eq!(log[..2], EXPECTED);
    assert_eq!(log[2], "lost connection was closed cleanly");
    assert_eq!(pair.server.reason(), Some(&Reason::Done));
}

#[test]
fn an_idle_timeout_ends_a_quiet_amp_connection_after_its_answers() {
    let log = Log::default();
    let client = Amp::new(Client {
        log: log.clone(),
        close_when_done: false,
    });
    let server = IdleTimeout::new(Amp::new(Math::new(false)), Duration::from_secs(5));
    let mut pair = Pair::new(client, server, PairConfig::default());
    pair.pump();
    assert_eq!(
        log.lock().unwrap()[..],
        EXPECTED,
        "answered before going quiet"
    );
    assert!(pair.run(Duration::from_secs(60)), "both sides close");
    assert_eq!(pair.server.reason(), Some(&Reason::TimedOut(Timeout::Idle)));
    assert_eq!(
        log.lock().unwrap().len(),
        3,
        "connection_lost once, nothing failed twice"
    );
}
