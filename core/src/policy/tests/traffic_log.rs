//! TrafficLog reports events and byte counts, never payloads.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use std::sync::Mutex;

use super::{connect, flush, ms, Probe};
use crate::policy::{TrafficLog, TRAFFIC_LOG_TARGET};

static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == TRAFFIC_LOG_TARGET
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = alloc::format!("{} {}", record.level(), record.args());
            RECORDS.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    }
    fn flush(&self) {}
}

#[test]
fn events_and_sizes_are_logged_without_payloads() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Trace);
    let mut conn = connect(TrafficLog::new(Probe::default(), "conn-7".to_string()));
    conn.handle_data(ms(1), b"secret payload");
    conn.handle_message(ms(2), b"reply");
    flush(&mut conn, ms(2));
    conn.close(ms(3));
    let records: Vec<String> = RECORDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|r| r.contains("conn-7"))
        .cloned()
        .collect();
    assert_eq!(
        records,
        [
            "DEBUG conn-7 * connected (peer Some(127.0.0.1:1))",
            "TRACE conn-7 C 14 bytes",
            "TRACE conn-7 S 5 bytes",
            // The close from outside reaches the protocol (`close_requested`), whose default
            // closes: our side's close.
            "DEBUG conn-7 S * close requested",
            "DEBUG conn-7 * connection lost: connection was closed cleanly",
        ]
    );
    assert!(records.iter().all(|r| !r.contains("secret")));
}
