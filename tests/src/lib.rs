//! The conformance suite: every scenario is written once, against [`Harness`], and run on the
//! in-memory network ([`memory::Memory`]), on `loomwork-std`, on `loomwork-smol` and on
//! `loomwork-tokio` over real loopback sockets. Scenario names say the behaviour they prove.
//!
//! Ids such as `LR-5` cite Twisted behaviours listed in `docs/twisted-behaviour.md` in the
//! repository; references such as "docs/architecture.md §7" point into the same `docs/` folder.

use std::net::SocketAddr;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use loomwork::connector::{self, ClientFactory};
use loomwork::stream::{Config, Protocol, ServerFactory};

pub mod backlog;
pub mod child;
pub mod cli;
pub mod memory;
pub mod netns;
pub mod procfs;
pub mod protocols;
pub mod runtimes;
pub mod scenarios;
pub mod tls;
pub mod udp;

/// A runtime under test, seen through the few operations the scenarios need.
pub trait Harness {
    /// Shown in failure messages.
    const NAME: &'static str;
    /// Listens on `addr` (port 0: any free port) with `factory`.
    fn listen<F>(&self, addr: SocketAddr, factory: F, config: Config) -> Box<dyn ServerUnderTest>
    where
        F: ServerFactory + Send + 'static,
        F::Protocol: Send + 'static,
        <F::Protocol as Protocol>::Message: Send + 'static;

    /// Starts a connector towards `addr`.
    fn connect<C>(
        &self,
        addr: SocketAddr,
        factory: C,
        connector: connector::Config,
    ) -> Box<dyn ClientUnderTest<C>>
    where
        C: ClientFactory + Send + 'static,
        C::Protocol: Send + 'static,
        <C::Protocol as Protocol>::Message: Send + 'static;

    /// Lets `duration` pass (virtual time on the memory network).
    fn sleep(&self, duration: Duration);

    /// An address on which nothing listens (connecting is refused).
    fn unused_addr(&self) -> SocketAddr;

    /// Threads or tasks alive in the runtime, for leak checks; `None` if not meaningful.
    fn live_workers(&self) -> Option<usize>;
}

/// A server started by a [`Harness`].
pub trait ServerUnderTest {
    /// The bound address.
    fn local_addr(&self) -> SocketAddr;
    /// Live connections.
    fn connection_count(&self) -> usize;
    /// Stops accepting, closes gracefully, aborts what is left after `drain`; returns
    /// (drained, aborted).
    fn shutdown(self: Box<Self>, drain: Duration) -> (usize, usize);
}

/// A client started by a [`Harness`].
pub trait ClientUnderTest<C> {
    /// Waits until the connector has stopped and its last connection ended.
    fn join(self: Box<Self>) -> C;
}

static EXCLUSIVE: RwLock<()> = RwLock::new(());

/// Held by every scenario, so that the leak scenario (which takes [`exclusive`]) sees only its
/// own threads and tasks.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner())
}

/// Held by scenarios that count the process's threads, tasks or descriptors.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner())
}

/// Instantiates every scenario as a `#[test]` for one harness expression.
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance_suite!(@tests $harness;
            echo_round_trip,
            many_clients_echo_64_kib_with_checksums,
            graceful_close_after_4_mib_write_delivers_every_byte,
            graceful_close_delivers_every_byte_even_with_unread_input,
            abort_discards_the_queue_and_resets_the_peer,
            half_closed_client_still_gets_its_answer,
            refused_connection_reaches_connection_failed,
            client_reconnects_once_the_server_comes_back,
            timers_fire_in_order_and_never_early,
            slow_reader_keeps_the_server_queue_bounded_and_producer_paused,
            peer_reset_mid_stream_gives_exactly_one_connection_lost,
            server_shutdown_closes_everything_and_leaks_nothing,
            refusing_factory_closes_the_socket_without_callbacks,
            connection_closed_hears_the_socket_peer_behind_a_proxy_header,
            peer_vanishing_while_the_server_queue_is_full_is_noticed_once,
            reader_that_never_reads_is_bounded_then_aborted_at_the_drain_deadline,
            framed_echo_every_framing_max_empty_and_thousands,
            over_limit_frame_closes_only_its_own_connection,
            malformed_input_on_one_connection_loses_nothing_for_100_others,
            slow_loris_is_evicted_by_the_request_timeout_while_others_are_served,
            idle_connections_close_after_the_timeout_while_active_ones_stay,
            throttled_connections_keep_within_ten_percent_of_the_limit,
            per_peer_cap_refuses_the_extra_connection_and_accepts_again_after_one_closes,
            drain_finishes_in_flight_exchanges_and_aborts_stragglers,
            chat_fan_out_evicts_idle_members_while_readers_get_every_line,
            small_writes_to_a_peer_that_never_reads_stop_at_the_cap,
            amp_pipelined_calls_answered_out_of_order_reach_their_callers_once,
        );
    };
    (@tests $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let _guard = $crate::scenarios::guard_for(stringify!($name));
                let harness = $harness;
                $crate::scenarios::$name(&harness);
            }
        )*
    };
}
