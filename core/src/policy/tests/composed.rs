//! Policies nest with each other and with `Framed`: an idle timeout around a throttled line echo.

use core::time::Duration;

use bytes::Bytes;

use super::{flush, ms};
use crate::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
use crate::policy::{IdleTimeout, Rate, Throttled};
use crate::reason::{Reason, Timeout};
use crate::stream::{Config, Connection};

struct LineEcho;

impl FrameHandler for LineEcho {
    type Codec = LineCodec;
    type Message = ();
    fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        let _ = tx.send_frame(line);
    }
}

#[test]
fn idle_timeout_around_a_throttled_line_echo() {
    // 10 bytes per second, one 5-byte line ("abc\r\n") per half second.
    let rate = Rate::per_second(10).with_burst(5);
    let framed = Framed::new(LineEcho, LineCodec::new());
    let protocol = IdleTimeout::new(
        Throttled::new(framed, Some(rate), None),
        Duration::from_secs(2),
    );
    let mut conn = Connection::new(protocol, Config::default());
    let addr = super::addr("127.0.0.1:1");
    conn.handle_connected(ms(0), addr, addr);
    conn.handle_data(ms(0), b"abc\r\nabc\r\nabc\r\nabc\r\n");
    let mut echoed = alloc::vec::Vec::new();
    let mut times = alloc::vec::Vec::new();
    echoed.extend(flush(&mut conn, ms(0)));
    times.push(ms(0));
    while let Some(at) = conn.next_timeout() {
        conn.handle_timeout(at);
        let out = flush(&mut conn, at);
        if !out.is_empty() {
            times.push(at);
        }
        echoed.extend(out);
        if conn.is_closed() {
            break;
        }
    }
    assert_eq!(echoed, b"abc\r\nabc\r\nabc\r\nabc\r\n");
    assert_eq!(
        times,
        [ms(0), ms(500), ms(1_000), ms(1_500)],
        "one line per half second"
    );
    assert_eq!(conn.stats().frames_received, 4);
    // The last echo at 1.5 s was the last traffic: idle 2 s later.
    assert_eq!(conn.reason(), Some(&Reason::TimedOut(Timeout::Idle)));
}
