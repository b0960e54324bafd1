//! # loomwork-net
//!
//! Every socket operation loomwork's runtimes perform, written once, as plain synchronous
//! functions over std and socket2 sockets (the role `quinn-udp` plays under quinn).
//!
//! `loomwork-std` (a thread per connection, sleeping in `poll(2)`) and `loomwork-smol` (a task
//! per connection over `async_io::Async`) differ only in how they *wait*; what they do once a
//! socket is ready lives here, so that the two cannot drift apart:
//!
//! - [`listen`]: binding listeners ([`ListenConfig`], `SO_REUSEPORT`, IPv6-only on IPv6
//!   addresses, backlog), which accept errors are transient and which call for a pause, and the
//!   one accept back-off ([`AcceptBackoff`], [`ACCEPT_BATCH`]);
//! - [`companions`]: the futures an async runtime polls beside a connection in its task (a
//!   relay's upstream leg), executor-independent;
//! - [`mailbox`]: connection handles for async runtimes, and the inbox a connection's task
//!   reads (messages, close and abort, companion jobs), and [`registry`]: a server's live
//!   connections and the wait for them all to finish;
//! - [`dial`]: a non-blocking connect and its completion check;
//! - [`tcp`]: reading straight into a connection's buffer (its own, or storage lent by a
//!   per-thread pool while it reads), vectored sends that never raise `SIGPIPE`, half-close, reset on abort, and the
//!   per-connection options;
//! - [`udp`]: UDP and multicast sockets, the core's socket commands, the receive buffer and the
//!   one receive-error classification;
//! - [`resolve()`]: the blocking system resolver;
//! - `tokio_fd` (feature `tokio`, Unix): registering a std socket with tokio's reactor, the one
//!   `unsafe` call loomwork-tokio needs;
//! - [`next_connection_id`]: the one counter of connection ids, whichever runtime drives them;
//! - [`reason_from_io`]: the one mapping from `std::io::Error` to [`loomwork::Reason`] (the
//!   portable core knows no `errno`).
//!
//! All of the project's `unsafe` code lives in this crate, each block with its `SAFETY`
//! argument; the runtimes are `#![forbid(unsafe_code)]`.
//!
//! ```
//! use loomwork::Reason;
//! let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
//! assert_eq!(loomwork_net::reason_from_io(&refused), Reason::Refused);
//! ```

#![deny(unsafe_code)]

pub mod companions;
pub mod dial;
mod drive;
pub mod listen;
pub mod mailbox;
mod reason;
pub mod registry;
mod resolve;
mod signal;
mod sync;
pub mod tcp;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(all(unix, feature = "tokio"))]
pub mod tokio_fd;
pub mod udp;

pub use drive::{drive, Next};
pub use listen::{AcceptBackoff, ListenConfig, ACCEPT_BATCH};
pub use reason::reason_from_io;
pub use resolve::resolve;
pub use signal::{install_stop_signal, wait_for_stop_signal};
pub use sync::next_connection_id;
