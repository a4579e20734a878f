//! TLS to upstreams with rustls 0.23's unbuffered API: the client configuration (webpki roots
//! plus an optional PEM file, ring, ChaCha20 first on CPUs without AES instructions) and the
//! per-connection record engine that decrypts in our ciphertext buffer and appends the plaintext
//! to the response's receive buffer.

use std::mem;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use rustls::client::UnbufferedClientConnection;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::{CipherSuite, ClientConfig, RootCertStore};

use super::UpstreamError;
use super::conn::{Fail, ReadRoom, read_more, write_all};
use crate::net::TcpStream;

/// Builds the shared client configuration: webpki roots, plus every certificate in
/// `extra_ca_file`.
pub(crate) fn client_config(
    extra_ca_file: Option<&Path>,
) -> Result<Arc<ClientConfig>, UpstreamError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca_file {
        add_pem_roots(&mut roots, path)?;
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider(!cpu_has_aes())))
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamError::Tls {
            origin: "client setup".to_owned(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn add_pem_roots(roots: &mut RootCertStore, path: &Path) -> Result<(), UpstreamError> {
    let fail = |reason: String| UpstreamError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let certs =
        CertificateDer::pem_file_iter(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut added = 0usize;
    for cert in certs {
        let cert = cert.map_err(|e| fail(format!("invalid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("invalid CA certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(fail("no CERTIFICATE block found".to_owned()));
    }
    Ok(())
}

/// The ring provider; with `prefer_chacha`, ChaCha20-Poly1305 suites come first (AES-GCM in
/// software costs several times more CPU than ChaCha20, e.g. on the Raspberry Pi 4).
fn provider(prefer_chacha: bool) -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    if prefer_chacha {
        provider
            .cipher_suites
            .sort_by_key(|suite| !is_chacha(suite.suite()));
    }
    provider
}

fn is_chacha(suite: CipherSuite) -> bool {
    matches!(
        suite,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
            | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    )
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes")
}

#[cfg(target_arch = "aarch64")]
fn cpu_has_aes() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn cpu_has_aes() -> bool {
    false
}

/// What the record engine needs before it can go on.
enum Progress {
    /// `outgoing` holds records to send.
    Transmit,
    /// Every complete record has been processed: read more ciphertext.
    NeedRead,
    /// close_notify received.
    PeerClosed,
}

/// One TLS connection's state: rustls plus our ciphertext buffers.
pub(crate) struct TlsLayer {
    conn: UnbufferedClientConnection,
    /// Received ciphertext; bytes before `consumed` are processed and dropped at the next read.
    incoming: Vec<u8>,
    consumed: usize,
    /// Encoded records not yet sent.
    outgoing: Vec<u8>,
    /// The HTTP request, encrypted as soon as the handshake allows.
    request: Option<Vec<u8>>,
    peer_closed: bool,
}

impl TlsLayer {
    pub(crate) fn new(config: Arc<ClientConfig>, host: &str) -> Result<TlsLayer, Fail> {
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.to_owned())
                .map_err(|_| Fail::Tls("host is not a valid TLS server name".to_owned()))?,
        };
        let conn = UnbufferedClientConnection::new(config, name).map_err(tls_fail)?;
        Ok(TlsLayer {
            conn,
            incoming: Vec::with_capacity(ReadRoom::DEFAULT.reserve),
            consumed: 0,
            outgoing: Vec::new(),
            request: None,
            peer_closed: false,
        })
    }

    /// Queues the HTTP request, encrypted as soon as the handshake allows.
    pub(crate) fn queue_request(&mut self, request: Vec<u8>) {
        self.request = Some(request);
    }

    /// Drives the handshake, sends the request once possible, and appends decrypted application
    /// data to `out`; returns how many bytes were appended, 0 at the end of the stream.
    pub(crate) async fn fill(
        &mut self,
        stream: &TcpStream,
        out: &mut BytesMut,
        room: ReadRoom,
    ) -> Result<usize, Fail> {
        let before = out.len();
        loop {
            if self.peer_closed {
                return Ok(out.len() - before);
            }
            match self.process(out, room)? {
                Progress::Transmit => write_all(stream, &mut self.outgoing)
                    .await
                    .map_err(Fail::Io)?,
                Progress::PeerClosed => self.peer_closed = true,
                Progress::NeedRead => {
                    if out.len() > before {
                        return Ok(out.len() - before);
                    }
                    self.compact(room);
                    if read_more(stream, &mut self.incoming)
                        .await
                        .map_err(Fail::Io)?
                        == 0
                    {
                        if self.conn.is_handshaking() {
                            return Err(Fail::Tls(
                                "connection closed during the handshake".to_owned(),
                            ));
                        }
                        if self.consumed < self.incoming.len() {
                            return Err(Fail::Truncated);
                        }
                        // No close_notify, but every record was whole: an end, as browsers
                        // treat it. Length and chunk framing still catch a cut body.
                        self.peer_closed = true;
                    }
                }
            }
        }
    }

    /// Processes records until rustls needs I/O; application data goes to `out`.
    fn process(&mut self, out: &mut BytesMut, room: ReadRoom) -> Result<Progress, Fail> {
        loop {
            let incoming = self.incoming.get_mut(self.consumed..).unwrap_or_default();
            let UnbufferedStatus { mut discard, state } = self.conn.process_tls_records(incoming);
            let progress = match state.map_err(tls_fail)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_fail)?;
                        discard += record.discard;
                        // rustls 0.23 has already copied the record out of our buffer into a Vec
                        // of its own (0.24 will not); this is our one copy, into the shared
                        // receive buffer that viewers are sent from.
                        if out.capacity() - out.len() < record.payload.len() {
                            out.reserve(room.reserve.max(record.payload.len()));
                        }
                        out.extend_from_slice(record.payload);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut data) => {
                    append(&mut self.outgoing, |b| {
                        data.encode(b).map_err(|e| match e {
                            EncodeError::InsufficientSize(InsufficientSizeError {
                                required_size,
                            }) => Some(required_size),
                            _ => None,
                        })
                    })?;
                    None
                }
                ConnectionState::TransmitTlsData(data) => {
                    data.done();
                    Some(Progress::Transmit)
                }
                ConnectionState::WriteTraffic(mut traffic) => match self.request.take() {
                    Some(request) => {
                        append(&mut self.outgoing, |b| {
                            traffic.encrypt(&request, b).map_err(|e| match e {
                                EncryptError::InsufficientSize(InsufficientSizeError {
                                    required_size,
                                }) => Some(required_size),
                                _ => None,
                            })
                        })?;
                        Some(Progress::Transmit)
                    }
                    None => Some(Progress::NeedRead),
                },
                ConnectionState::BlockedHandshake => Some(Progress::NeedRead),
                ConnectionState::PeerClosed | ConnectionState::Closed => Some(Progress::PeerClosed),
                _ => return Err(Fail::Tls("unexpected TLS state".to_owned())),
            };
            self.consumed += discard;
            if let Some(progress) = progress {
                return Ok(progress);
            }
        }
    }

    /// Drops processed ciphertext and makes room; only ever before a read, so a burst of records
    /// is processed without moving bytes.
    fn compact(&mut self, room: ReadRoom) {
        let consumed = mem::take(&mut self.consumed).min(self.incoming.len());
        self.incoming.drain(..consumed);
        if self.incoming.capacity() - self.incoming.len() < room.min_spare {
            self.incoming.reserve(room.reserve);
        }
    }
}

fn tls_fail(e: rustls::Error) -> Fail {
    Fail::Tls(e.to_string())
}

/// Appends what `write` produces to `out`, growing `out` to the size `write` asks for.
fn append(
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> Result<(), Fail> {
    let start = out.len();
    let mut room = 0;
    loop {
        out.resize(start + room, 0);
        match write(out.get_mut(start..).unwrap_or_default()) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(Some(required)) if required > room => room = required,
            Err(_) => {
                out.truncate(start);
                return Err(Fail::Tls("could not encode a TLS record".to_owned()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chacha_comes_first_without_aes() {
        let suites = |p: CryptoProvider| -> Vec<bool> {
            p.cipher_suites
                .iter()
                .map(|s| is_chacha(s.suite()))
                .collect()
        };
        let preferred = suites(provider(true));
        assert!(preferred.len() >= 6, "{preferred:?}");
        let first_aes = preferred.iter().position(|c| !c).unwrap();
        assert!(
            preferred.get(first_aes..).unwrap().iter().all(|c| !c),
            "{preferred:?}"
        );
        assert_eq!(preferred.iter().filter(|c| **c).count(), 3);
        // With AES instructions, ring's own order (AES-GCM first) is kept.
        assert_eq!(suites(provider(false)).first(), Some(&false));
    }

    #[test]
    fn extra_ca_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for path in [&missing, &empty, &garbage] {
            let err = client_config(Some(path)).err().unwrap();
            assert!(matches!(err, UpstreamError::CaFile { .. }), "{err:?}");
            assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        }
        assert!(client_config(None).is_ok());
    }
}
