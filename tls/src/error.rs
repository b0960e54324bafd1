//! From what rustls says to the core's typed [`TlsError`].

use loomwork::{Reason, TlsError, TlsErrorKind};
use rustls::{AlertDescription, CertificateError, Error};

/// The reason a connection ends with when rustls fails with `error`.
///
/// ```
/// use loomwork::{Reason, TlsError, TlsErrorKind};
/// use rustls::{AlertDescription, CertificateError, Error};
///
/// let ours = Error::InvalidCertificate(CertificateError::UnknownIssuer);
/// assert_eq!(
///     loomwork_tls::reason_for(&ours),
///     Reason::Tls(TlsError::local(TlsErrorKind::UnknownIssuer))
/// );
/// let theirs = Error::AlertReceived(AlertDescription::UnknownCA);
/// assert_eq!(
///     loomwork_tls::reason_for(&theirs),
///     Reason::Tls(TlsError::from_peer(TlsErrorKind::UnknownIssuer))
/// );
/// ```
pub fn reason_for(error: &Error) -> Reason {
    Reason::Tls(tls_error(error))
}

fn tls_error(error: &Error) -> TlsError {
    use TlsErrorKind as K;
    let kind = match error {
        Error::AlertReceived(alert) => return TlsError::from_peer(alert_kind(*alert)),
        Error::InvalidCertificate(problem) => certificate_kind(problem),
        Error::NoCertificatesPresented => K::CertificateRequired,
        Error::PeerIncompatible(_) => K::NoSharedParameters,
        Error::PeerMisbehaved(_)
        | Error::InvalidMessage(_)
        | Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. }
        | Error::DecryptError
        | Error::PeerSentOversizedRecord => K::PeerMisbehaved,
        _ => K::Other,
    };
    TlsError::local(kind)
}

fn certificate_kind(problem: &CertificateError) -> TlsErrorKind {
    use TlsErrorKind as K;
    match problem {
        CertificateError::UnknownIssuer => K::UnknownIssuer,
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => K::CertificateExpired,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            K::CertificateNameMismatch
        }
        CertificateError::Revoked => K::CertificateRevoked,
        _ => K::BadCertificate,
    }
}

fn alert_kind(alert: AlertDescription) -> TlsErrorKind {
    use AlertDescription as A;
    use TlsErrorKind as K;
    match alert {
        A::UnknownCA => K::UnknownIssuer,
        A::CertificateExpired => K::CertificateExpired,
        A::CertificateRevoked => K::CertificateRevoked,
        A::UnrecognisedName => K::CertificateNameMismatch,
        A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateUnknown
        | A::NoCertificate
        | A::BadCertificateStatusResponse
        | A::BadCertificateHashValue
        | A::CertificateUnobtainable => K::BadCertificate,
        A::CertificateRequired => K::CertificateRequired,
        A::HandshakeFailure
        | A::ProtocolVersion
        | A::InsufficientSecurity
        | A::NoApplicationProtocol
        | A::MissingExtension
        | A::UnsupportedExtension => K::NoSharedParameters,
        A::UnexpectedMessage
        | A::BadRecordMac
        | A::DecryptionFailed
        | A::RecordOverflow
        | A::DecodeError
        | A::DecryptError
        | A::IllegalParameter => K::PeerMisbehaved,
        _ => K::Other,
    }
}
