//! Moving a test driver's virtual clock: the one loop both recorders use.

use crate::time::Instant;

/// A test driver that owns a machine and a virtual clock.
pub(crate) trait VirtualTime {
    /// The driver's clock.
    fn clock(&mut self) -> &mut Instant;
    /// The machine's next deadline.
    fn next_timeout(&self) -> Option<Instant>;
    /// Tells the machine the clock's time.
    fn handle_timeout(&mut self);
    /// One turn of the driver's loop.
    fn step(&mut self) -> bool;
}

/// Moves `driver`'s clock to `at` (never backwards), firing every deadline on the way at its
/// own time and stepping after each, so that a timer's effects (a write, the peer's read)
/// happen before a later timer fires, as they would in real time.
pub(crate) fn advance_to(driver: &mut impl VirtualTime, at: Instant) {
    driver.step();
    while let Some(next) = driver.next_timeout() {
        if next > at {
            break;
        }
        let now = driver.clock();
        *now = (*now).max(next);
        driver.handle_timeout();
        driver.step();
    }
    let now = driver.clock();
    *now = (*now).max(at);
    driver.handle_timeout();
    driver.step();
}
