//! Protocol timers on a real clock: in order, never early (docs/architecture.md §2).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{any_port, bounded};
use loomwork::bytes::BytesMut;
use loomwork::stream::{Protocol, Transport};
use loomwork::TimerId;
use loomwork_smol::listen_tcp;
use smol::io::AsyncReadExt;
use smol::net::TcpStream;

/// Sets timers at the given delays on connect; writes a byte per firing; closes after the last.
struct Alarms {
    delays: Vec<Duration>,
    /// The wall clock before the client connected. Not the wall clock in `connection_made`: the
    /// deadlines count from the core's `now`, which the runtime reads before it calls the
    /// protocol, so a preemption in between would make a timer that is on time look early.
    started: Instant,
    set: Vec<(TimerId, Duration, loomwork::Instant)>,
    fired: Arc<Mutex<Vec<(Duration, Duration)>>>,
}

impl Protocol for Alarms {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        for &delay in &self.delays {
            let id = tx.call_later(delay);
            self.set.push((id, delay, tx.now()));
        }
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_>) {
        if let Some(&(_, delay, core)) = self.set.iter().find(|(id, ..)| *id == timer) {
            // Both clocks: the core's `now` and the wall clock must have passed the delay.
            let core_elapsed = tx.now() - core;
            assert!(core_elapsed >= delay, "fired early by the core clock");
            self.fired
                .lock()
                .unwrap()
                .push((delay, self.started.elapsed()));
        }
        let _ = tx.write_slice(b"!");
        if self.fired.lock().unwrap().len() == self.delays.len() {
            tx.lose_connection();
        }
    }
}

#[test]
fn timers_fire_in_order_and_never_early() {
    bounded(async {
        let fired = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&fired);
        let delays: Vec<Duration> = [40, 5, 25, 1, 60, 15]
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        let server_delays = delays.clone();
        let started = Instant::now();
        let server = listen_tcp(any_port(), move |_| Alarms {
            delays: server_delays.clone(),
            started,
            set: Vec::new(),
            fired: Arc::clone(&record),
        })
        .unwrap();
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, vec![b'!'; delays.len()]);
        let fired = fired.lock().unwrap().clone();
        let mut sorted = delays.clone();
        sorted.sort();
        let order: Vec<Duration> = fired.iter().map(|(delay, _)| *delay).collect();
        assert_eq!(order, sorted, "timers out of order");
        for (delay, waited) in &fired {
            eprintln!("timer {delay:?} fired after {waited:?}");
            assert!(
                waited >= delay,
                "timer {delay:?} fired early, after {waited:?}"
            );
        }
        server.shutdown(Duration::from_secs(5)).await;
    });
}
