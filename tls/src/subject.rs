//! The subject's common name of an X.509 certificate: the few DER steps to reach it.

use alloc::borrow::ToOwned;
use alloc::string::String;
use rustls::pki_types::CertificateDer;

/// The first common name (CN) in the subject of `cert`, if it has one and it is text.
///
/// A mutual-TLS server names its client by this: the chain it is read from has been
/// verified against the server's client CAs before the protocol exists. Only the subject is
/// read (not the subject alternative names), as Twisted's `getPeerCertificate().get_subject()
/// .commonName` does.
///
/// ```
/// use rustls::pki_types::CertificateDer;
///
/// let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
/// // rcgen names a simple self-signed certificate "rcgen self signed cert".
/// let cert: CertificateDer = made.cert.der().clone();
/// assert_eq!(loomwork_tls::common_name(&cert).as_deref(), Some("rcgen self signed cert"));
/// assert_eq!(loomwork_tls::common_name(&CertificateDer::from(vec![0x30, 0x00])), None);
/// ```
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let mut certificate = Der(cert.as_ref()).element(SEQUENCE)?;
    let mut tbs = certificate.element(SEQUENCE)?;
    if tbs.peek() == Some(VERSION) {
        tbs.element(VERSION)?;
    }
    tbs.element(INTEGER)?; // serial number
    tbs.element(SEQUENCE)?; // signature algorithm
    tbs.element(SEQUENCE)?; // issuer
    tbs.element(SEQUENCE)?; // validity
    let mut subject = tbs.element(SEQUENCE)?;
    while !subject.0.is_empty() {
        let mut set = subject.element(SET)?;
        while !set.0.is_empty() {
            let mut attribute = set.element(SEQUENCE)?;
            let oid = attribute.element(OID)?;
            if oid.0 != COMMON_NAME {
                continue;
            }
            let (tag, value) = attribute.any()?;
            return match tag {
                UTF8_STRING | PRINTABLE_STRING | IA5_STRING | TELETEX_STRING => {
                    core::str::from_utf8(value.0).ok().map(str::to_owned)
                }
                _ => None,
            };
        }
    }
    None
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const TELETEX_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;
/// 2.5.4.3, id-at-commonName.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// A cursor over DER elements; every read is checked.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next element, whatever its tag: the tag and the contents.
    fn any(&mut self) -> Option<(u8, Der<'a>)> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (digits, after) = rest.split_at(count);
            rest = after;
            digits
                .iter()
                .fold(0usize, |len, &digit| (len << 8) | usize::from(digit))
        };
        if len > rest.len() {
            return None;
        }
        let (contents, after) = rest.split_at(len);
        self.0 = after;
        Some((tag, Der(contents)))
    }

    /// The next element, which must carry `tag`: its contents.
    fn element(&mut self, tag: u8) -> Option<Der<'a>> {
        match self.any()? {
            (found, contents) if found == tag => Some(contents),
            _ => None,
        }
    }
}
