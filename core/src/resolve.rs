//! Name resolution, the parts that need no I/O: IP literals and the typed DNS error
//! (docs/twisted-behaviour.md §10, RS-1, KW-12).
//!
//! Runtimes do the lookup itself with the system resolver (`getaddrinfo`) and answer IP
//! literals at once with [`ip_literal`], without a lookup.

use alloc::string::String;
use core::fmt;
use core::net::IpAddr;

/// Reads `host` as an IP literal: `127.0.0.1`, `::1` or `[::1]`. `None` for a host name.
///
/// Unlike Twisted (RS-1 **Q**), IPv6 literals are literals too.
///
/// ```
/// use loomwork::resolve::ip_literal;
/// assert_eq!(ip_literal("::1"), Some("::1".parse().unwrap()));
/// assert_eq!(ip_literal("[::1]"), Some("::1".parse().unwrap()));
/// assert_eq!(ip_literal("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
/// assert_eq!(ip_literal("localhost"), None);
/// ```
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    unbracketed.parse().ok()
}

/// Why a host name could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DnsErrorKind {
    /// The resolver answered, but with no address.
    NotFound,
    /// The name cannot be looked up at all (empty, or containing a NUL byte).
    InvalidName,
    /// The lookup itself failed (no resolver reachable, temporary failure, ...).
    Failed,
}

/// A failed name lookup (Twisted `DNSLookupError`).
///
/// Displays as `DNS lookup failed: <name>`, the line the `resolve` example prints; the
/// resolver's own explanation, when there is one, is in [`detail`](Self::detail).
///
/// ```
/// use loomwork::resolve::{DnsError, DnsErrorKind};
/// let err = DnsError::new("nowhere.invalid", DnsErrorKind::NotFound, None);
/// assert_eq!(err.to_string(), "DNS lookup failed: nowhere.invalid");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsError {
    name: String,
    kind: DnsErrorKind,
    detail: Option<String>,
}

impl DnsError {
    /// A failed lookup of `name`.
    pub fn new(name: impl Into<String>, kind: DnsErrorKind, detail: Option<String>) -> Self {
        DnsError {
            name: name.into(),
            kind,
            detail,
        }
    }

    /// The name that was looked up.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why it failed.
    pub fn kind(&self) -> DnsErrorKind {
        self.kind
    }

    /// The resolver's explanation, if it gave one.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DNS lookup failed: {}", self.name)
    }
}

impl core::error::Error for DnsError {}

impl From<&DnsError> for crate::Reason {
    fn from(_: &DnsError) -> Self {
        crate::Reason::Dns
    }
}
