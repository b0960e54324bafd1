//! IdleTimeout and IdleTimer (TM-1..TM-4, PO-6).

use core::time::Duration;

use super::{connect, flush, ms, Probe};
use crate::policy::{IdleTimeout, IdleTimer};
use crate::reason::{Reason, Timeout};
use crate::stream::Transport;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn closes_exactly_at_the_deadline_with_the_idle_reason() {
    let mut conn = connect(IdleTimeout::new(Probe::default(), 10 * SECOND));
    assert_eq!(conn.next_timeout(), Some(ms(10_000)));
    conn.handle_timeout(ms(9_999));
    assert!(!conn.is_closed());
    conn.handle_timeout(ms(10_000));
    assert_eq!(conn.reason(), Some(&Reason::TimedOut(Timeout::Idle)));
    assert_eq!(conn.protocol().inner().lost, 1);
    // The socket lingers for the peer's EOF (`Config::close_linger`); no protocol timer does.
    conn.handle_read_closed(ms(10_000));
    assert!(conn.is_closed());
    assert_eq!(
        conn.next_timeout(),
        None,
        "no timer outlives the connection (TM-4)"
    );
}

#[test]
fn traffic_in_moves_the_deadline() {
    let mut conn = connect(IdleTimeout::new(Probe::default(), 10 * SECOND));
    conn.handle_data(ms(4_000), b"x");
    conn.handle_timeout(ms(10_000));
    assert!(!conn.is_closed());
    assert_eq!(conn.next_timeout(), Some(ms(14_000)));
    conn.handle_timeout(ms(13_999));
    assert!(!conn.is_closed());
    conn.handle_timeout(ms(14_000));
    assert_eq!(conn.reason(), Some(&Reason::TimedOut(Timeout::Idle)));
}

#[test]
fn traffic_out_moves_the_deadline() {
    let mut conn = connect(IdleTimeout::new(Probe::default(), 10 * SECOND));
    conn.handle_message(ms(6_000), b"hello");
    assert_eq!(flush(&mut conn, ms(6_000)), b"hello");
    conn.handle_timeout(ms(10_000));
    assert!(!conn.is_closed());
    assert_eq!(conn.next_timeout(), Some(ms(16_000)));
    conn.handle_timeout(ms(16_000));
    assert!(conn.is_ended());
}

#[test]
fn activity_after_the_timeout_is_harmless() {
    // PO-6: Twisted raises AlreadyCalled when traffic follows the expiry.
    let mut conn = connect(IdleTimeout::new(Probe::default(), SECOND));
    conn.handle_timeout(ms(1_000));
    assert!(conn.is_ended());
    conn.handle_data(ms(1_001), b"late");
    conn.handle_message(ms(1_002), b"late");
    conn.handle_timeout(ms(5_000));
    assert_eq!(conn.protocol().inner().lost, 1);
    assert!(conn.protocol().inner().received.is_empty());
}

#[test]
fn a_hook_can_grant_more_time_once() {
    let mut probes = 0;
    let hook =
        move |_: &mut Probe, timer: &mut IdleTimer, tx: &mut Transport<'_, &'static [u8]>| {
            probes += 1;
            if probes == 1 {
                let _ = tx.write_slice(b"are you there?");
                timer.set_timeout(Some(Duration::from_secs(5)), tx);
            } else {
                tx.abort_connection_with(Reason::TimedOut(Timeout::Idle));
            }
        };
    let idle = IdleTimeout::with_hook(Probe::default(), Some(10 * SECOND), hook);
    let mut conn = connect(idle);
    conn.handle_timeout(ms(10_000));
    assert!(!conn.is_closed());
    assert_eq!(flush(&mut conn, ms(10_000)), b"are you there?");
    assert_eq!(conn.next_timeout(), Some(ms(15_000)));
    conn.handle_timeout(ms(15_000));
    assert_eq!(conn.reason(), Some(&Reason::TimedOut(Timeout::Idle)));
}

#[test]
fn timer_follows_twisted_set_reset_and_cancel_rules() {
    use crate::stream::Protocol;
    use crate::timer::TimerId;
    use bytes::BytesMut;

    /// Drives an IdleTimer from messages, as a TimeoutMixin user would (TM-1..TM-3).
    #[derive(Default)]
    struct Mixin {
        idle: IdleTimer,
        previous: Vec<Option<Duration>>,
        fired: Vec<crate::Instant>,
    }
    use alloc::vec::Vec;
    impl Protocol for Mixin {
        type Message = Option<Option<Duration>>; // Some(p): set_timeout(p); None: reset
        fn data_received(&mut self, d: &mut BytesMut, _: &mut Transport<'_, Self::Message>) {
            d.clear();
        }
        fn message(&mut self, m: Self::Message, tx: &mut Transport<'_, Self::Message>) {
            match m {
                Some(period) => self.previous.push(self.idle.set_timeout(period, tx)),
                None => self.idle.reset(tx),
            }
        }
        fn timer_fired(&mut self, t: TimerId, tx: &mut Transport<'_, Self::Message>) {
            if self.idle.expired(t, tx) {
                self.fired.push(tx.now());
            }
        }
    }
    let mut conn = connect(Mixin::default());
    conn.handle_message(ms(0), None); // TM-2: reset without a timer does nothing
    assert_eq!(conn.next_timeout(), None);
    conn.handle_message(ms(0), Some(Some(10 * SECOND)));
    conn.handle_message(ms(5_000), None);
    conn.handle_timeout(ms(10_000));
    conn.handle_timeout(ms(15_000)); // TM-3 probed: set(10), reset at 5 -> fires at 15
    assert_eq!(conn.protocol().fired, [ms(15_000)]);
    assert!(!conn.protocol().idle.is_active());
    conn.handle_message(ms(16_000), None); // fired: reset does nothing
    assert_eq!(conn.next_timeout(), None);
    conn.handle_message(ms(20_000), Some(Some(2 * SECOND))); // a fresh timer
    conn.handle_message(ms(21_000), Some(None)); // TM-1: None cancels
    conn.handle_timeout(ms(30_000));
    assert_eq!(conn.protocol().fired, [ms(15_000)]);
    assert_eq!(
        conn.protocol().previous,
        [None, Some(10 * SECOND), Some(2 * SECOND)]
    );
}

#[test]
fn writes_need_not_count_as_traffic() {
    let idle = IdleTimeout::new(Probe::default(), 10 * SECOND).resetting_on_writes(false);
    let mut conn = connect(idle);
    conn.handle_message(ms(6_000), b"you there?");
    flush(&mut conn, ms(6_000));
    conn.handle_timeout(ms(10_000));
    assert_eq!(conn.reason(), Some(&Reason::TimedOut(Timeout::Idle)));
}

#[test]
fn the_protocol_changes_and_cancels_its_timeout_from_inside() {
    use crate::policy::OnIdle;
    use crate::stream::Protocol;
    use bytes::BytesMut;

    /// 5 s to log in, then 60 s of idleness allowed; `stay` turns the timeout off.
    #[derive(Default)]
    struct Login {
        wanted: Option<Option<Duration>>,
    }
    impl Protocol for Login {
        type Message = ();
        fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
            match &data.split()[..] {
                b"login" => self.wanted = Some(Some(60 * SECOND)),
                b"stay" => self.wanted = Some(None),
                _ => {}
            }
        }
    }
    /// Carries out what the protocol asked for.
    struct AsAsked;
    impl OnIdle<Login> for AsAsked {
        fn timed_out(&mut self, _: &mut Login, _: &mut IdleTimer, tx: &mut Transport<'_>) {
            tx.lose_connection_with(Reason::TimedOut(Timeout::Idle));
        }
        fn after_callback(&mut self, p: &mut Login, timer: &mut IdleTimer, tx: &mut Transport<'_>) {
            if let Some(period) = p.wanted.take() {
                timer.set_timeout(period, tx);
            }
        }
    }

    let mut conn = connect(IdleTimeout::with_hook(
        Login::default(),
        Some(5 * SECOND),
        AsAsked,
    ));
    conn.handle_data(ms(1_000), b"login");
    conn.handle_timeout(ms(6_000));
    assert!(!conn.is_closed(), "the login period no longer applies");
    assert_eq!(conn.protocol().timer().deadline(), Some(ms(61_000)));
    conn.handle_data(ms(7_000), b"stay");
    assert_eq!(conn.next_timeout(), None, "cancelled from inside");
    conn.handle_timeout(ms(1_000_000));
    assert!(!conn.is_closed());

    let mut slow = connect(IdleTimeout::with_hook(
        Login::default(),
        Some(5 * SECOND),
        AsAsked,
    ));
    slow.handle_timeout(ms(5_000));
    assert_eq!(slow.reason(), Some(&Reason::TimedOut(Timeout::Idle)));
}
