//! Socket tests: the client inside `crate::net::run` against std-thread servers on loopback.
//! Servers hand back the request heads they read; every wait is bounded by `BOUND`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream as StdStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::*;

const BOUND: Duration = Duration::from_secs(10);
const UA: &str = "StreamForgeTest/1.0 (upstream)";

/// Runs `test` on a fresh tokio-uring runtime, failing if it takes longer than `BOUND`.
fn run<F: std::future::Future>(test: F) -> F::Output {
    crate::net::run(async {
        tokio::time::timeout(BOUND, test)
            .await
            .expect("test exceeded its time bound")
    })
    .expect("io_uring runtime")
}

fn listen_v4() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// Serves `connections` connections one after another with `handler`, which returns the
/// request head it read. Accepts and socket reads give up after `BOUND`.
fn serve<F>(listener: TcpListener, connections: usize, mut handler: F) -> JoinHandle<Vec<String>>
where
    F: FnMut(usize, StdStream) -> String + Send + 'static,
{
    use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
    let bound = nix::sys::time::TimeVal::new(BOUND.as_secs() as _, 0);
    setsockopt(&listener, ReceiveTimeout, &bound).unwrap();
    thread::spawn(move || {
        (0..connections)
            .map(|i| {
                let (stream, _) = listener.accept().expect("accept within bound");
                stream.set_read_timeout(Some(BOUND)).unwrap();
                stream.set_write_timeout(Some(BOUND)).unwrap();
                handler(i, stream)
            })
            .collect()
    })
}

/// Reads up to the end of a request head.
fn read_head(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "request head cut short");
        head.push(byte[0]);
        assert!(head.len() < 65536);
    }
    String::from_utf8(head).unwrap()
}

/// Waits for the client's FIN: proof that the client shut its socket down.
fn expect_eof(stream: &mut impl Read) {
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("the client closed within the bound");
}

fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn request_line(head: &str) -> &str {
    head.lines().next().unwrap_or_default()
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `body` as chunks of varying sizes with extensions, then trailers.
fn write_chunked(out: &mut impl Write, body: &[u8]) -> std::io::Result<()> {
    let mut rest = body;
    let mut size = 1usize;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        write!(out, "{:X};ext={size}\r\n", chunk.len())?;
        out.write_all(chunk)?;
        out.write_all(b"\r\n")?;
        rest = tail;
        size = size * 7 % 40_009 + 1;
    }
    out.write_all(b"0\r\nX-Checksum: none\r\n\r\n")
}

fn opts() -> RequestOptions {
    let mut opts = RequestOptions::new(UA);
    opts.head_timeout = Duration::from_secs(5);
    opts.idle_timeout = Some(Duration::from_secs(5));
    opts
}

fn plain_client() -> Client {
    Client::new(&ClientOptions::default()).unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// GETs and collects the body chunk by chunk.
async fn fetch(
    client: &Client,
    url: &Url,
    opts: &RequestOptions,
) -> Result<(Response, Vec<u8>), UpstreamError> {
    let mut response = client.get(url, opts).await?;
    let mut body = Vec::new();
    while let Some(chunk) = response.next_chunk().await? {
        assert!(!chunk.is_empty());
        body.extend_from_slice(&chunk);
    }
    Ok((response, body))
}

fn assert_request(head: &str, target: &str, host: &str) {
    assert_eq!(
        request_line(head),
        format!("GET {target} HTTP/1.1"),
        "{head}"
    );
    assert_eq!(header_of(head, "host"), Some(host), "{head}");
    assert_eq!(header_of(head, "user-agent"), Some(UA), "{head}");
    assert_eq!(header_of(head, "accept"), Some("*/*"), "{head}");
    assert_eq!(header_of(head, "connection"), Some("close"), "{head}");
}

#[test]
fn plain_bodies_are_byte_exact_in_every_framing() {
    let body = pseudo_random(300_000, 1);
    let served = body.clone();
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 4, move |i, mut s| {
        let head = read_head(&mut s);
        match i {
            // Close-delimited, head and the first body bytes in one write.
            0 => {
                let mut first = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\n\r\n".to_vec();
                first.extend_from_slice(&served[..1000]);
                s.write_all(&first).unwrap();
                s.write_all(&served[1000..]).unwrap();
            }
            1 => {
                write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    served.len()
                )
                .unwrap();
                s.write_all(&served).unwrap();
                // Bytes past Content-Length are not body.
                let _ = s.write_all(b"JUNK");
            }
            2 => {
                let mut all = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n".to_vec();
                write_chunked(&mut all, &served).unwrap();
                // Odd write sizes split sizes, CRLFs and payloads across reads.
                for piece in all.chunks(4093) {
                    s.write_all(piece).unwrap();
                }
            }
            _ => s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap(),
        }
        head
    });
    run(async {
        let client = plain_client();
        for path in ["/close", "/length", "/chunked"] {
            let u = url(&format!("http://127.0.0.1:{port}{path}?password=secret"));
            let (response, got) = fetch(&client, &u, &opts()).await.unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(got.len(), body.len(), "{path}");
            assert!(got == body, "{path}: body differs");
            assert!(!format!("{response:?}").contains("secret"));
        }
        let (response, got) = fetch(&client, &url(&format!("http://127.0.0.1:{port}/")), &opts())
            .await
            .unwrap();
        assert_eq!((response.status, got.len()), (204, 0));
    });
    let heads = server.join().unwrap();
    let host = format!("127.0.0.1:{port}");
    assert_request(&heads[0], "/close?password=secret", &host);
    assert_request(&heads[1], "/length?password=secret", &host);
    assert_request(&heads[2], "/chunked?password=secret", &host);
    assert_request(&heads[3], "/", &host);
}

#[test]
fn body_is_handed_out_from_the_receive_buffer_without_copies() {
    let (go_on, proceed) = std::sync::mpsc::channel::<()>();
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 1, move |_, mut s| {
        let head = read_head(&mut s);
        // Head and first body bytes in one write: they arrive in one read.
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nabcd")
            .unwrap();
        proceed.recv_timeout(BOUND).unwrap();
        s.write_all(b"efgh").unwrap();
        head
    });
    run(async {
        let mut response = plain_client()
            .get(&url(&format!("http://127.0.0.1:{port}/")), &opts())
            .await
            .unwrap();
        assert_eq!(response.header("CONTENT-length"), Some("8"));
        let first = response.next_chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b"abcd");
        go_on.send(()).unwrap();
        let second = response.next_chunk().await.unwrap().unwrap();
        assert_eq!(&second[..], b"efgh");
        // The second read landed right behind the first in the same allocation: neither a
        // copy nor a new buffer.
        assert_eq!(
            second.as_ptr() as usize,
            first.as_ptr() as usize + first.len()
        );
        assert!(response.next_chunk().await.unwrap().is_none());
        assert!(response.next_chunk().await.unwrap().is_none());
    });
    server.join().unwrap();
}

#[test]
fn with_a_low_water_mark_a_whole_batch_arrives_in_one_read() {
    const BATCH: usize = 200_000;
    // A fresh connection's receive window is too small to hold a batch (the kernel wakes the
    // reader when the window closes): a streamed megabyte or two opens it, as on a source that
    // has been playing. When the kernel wakes the reader is its business (measured by the
    // harness); this checks that our read, once woken, has room for the whole batch.
    const WARM_UP: usize = 2 << 20;
    let (go_on, proceed) = std::sync::mpsc::channel::<()>();
    let (written, sent_all) = std::sync::mpsc::channel::<()>();
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let body = pseudo_random(BATCH + 1000, 7);
    let sent = body.clone();
    let server = serve(listener, 1, move |_, mut s| {
        let head = read_head(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        s.write_all(&vec![0x47; WARM_UP]).unwrap();
        proceed.recv_timeout(BOUND).unwrap();
        // Loopback hands this over in several segments; the reader must see one read.
        s.write_all(&sent).unwrap();
        written.send(()).unwrap();
        head
    });
    run(async {
        let mut response = plain_client()
            .get(&url(&format!("http://127.0.0.1:{port}/")), &opts())
            .await
            .unwrap();
        let mut warmed = 0;
        while warmed < WARM_UP {
            warmed += response.next_chunk().await.unwrap().unwrap().len();
        }
        assert_eq!(warmed, WARM_UP);
        response.set_receive_low_water(BATCH).unwrap();
        go_on.send(()).unwrap();
        sent_all.recv_timeout(BOUND).unwrap();
        let batch = response.next_chunk().await.unwrap().unwrap();
        assert!(
            batch.len() >= BATCH,
            "a read of {} bytes, not the batch of {BATCH}",
            batch.len()
        );
        assert_eq!(&batch[..], &body[..batch.len()]);
        response.close();
    });
    server.join().unwrap();
}

#[test]
fn lying_length_and_broken_framing_fail() {
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 4, |i, mut s| {
        let head = read_head(&mut s);
        let reply: &[u8] = match i {
            0 => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly fifty bytes of the hundred promised .........",
            1 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
            2 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            _ => b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        };
        s.write_all(reply).unwrap();
        head
    });
    run(async {
        let client = plain_client();
        let u = url(&format!("http://127.0.0.1:{port}/"));

        let mut response = client.get(&u, &opts()).await.unwrap();
        let mut got = 0;
        let err = loop {
            match response.next_chunk().await {
                Ok(Some(chunk)) => got += chunk.len(),
                Ok(None) => panic!("a short body ended cleanly"),
                Err(e) => break e,
            }
        };
        assert_eq!(got, 50);
        assert!(
            matches!(err, UpstreamError::UnexpectedEof { .. }),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::ConnectionError);
        assert!(matches!(
            response.next_chunk().await,
            Err(UpstreamError::Closed { .. })
        ));

        let err = fetch(&client, &u, &opts()).await.unwrap_err();
        assert!(matches!(err, UpstreamError::Malformed { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Protocol);

        let err = fetch(&client, &u, &opts()).await.unwrap_err();
        assert!(
            matches!(err, UpstreamError::UnexpectedEof { .. }),
            "{err:?}"
        );

        let err = client.get(&u, &opts()).await.unwrap_err();
        assert!(matches!(err, UpstreamError::Malformed { .. }), "{err:?}");
    });
    server.join().unwrap();
}

#[test]
fn redirects_are_followed_relative_and_absolute() {
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 3, move |i, mut s| {
        let head = read_head(&mut s);
        match i {
            0 => write!(
                s,
                "HTTP/1.1 301 Moved\r\nLocation: http://localhost:{port}/live/u/p/2.ts\r\nContent-Length: 4\r\n\r\nbody"
            )
            .unwrap(),
            // A redirect body that never ends must not be waited for.
            1 => s
                .write_all(b"HTTP/1.1 302 Found\r\nLocation: ../x/final.ts?token=1\r\n\r\nendless")
                .unwrap(),
            _ => s.write_all(b"HTTP/1.1 200 OK\r\n\r\nfinal").unwrap(),
        }
        head
    });
    run(async {
        let (response, body) = fetch(
            &plain_client(),
            &url(&format!("http://127.0.0.1:{port}/live/u/p/1.ts")),
            &opts(),
        )
        .await
        .unwrap();
        assert_eq!((response.status, &body[..]), (200, &b"final"[..]));
        assert_eq!(response.final_url().host(), "localhost");
        assert_eq!(
            response.final_url().path_and_query(),
            "/live/u/x/final.ts?token=1"
        );
    });
    let heads = server.join().unwrap();
    assert_request(&heads[0], "/live/u/p/1.ts", &format!("127.0.0.1:{port}"));
    assert_request(&heads[1], "/live/u/p/2.ts", &format!("localhost:{port}"));
    assert_request(
        &heads[2],
        "/live/u/x/final.ts?token=1",
        &format!("localhost:{port}"),
    );
}

#[test]
fn redirect_loops_stop_at_the_limit() {
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    // Exactly max_redirects + 1 connections: a further attempt would be refused.
    let server = serve(listener, 4, |_, mut s| {
        let head = read_head(&mut s);
        s.write_all(b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        head
    });
    run(async {
        let mut opts = opts();
        opts.max_redirects = 3;
        let err = plain_client()
            .get(&url(&format!("http://127.0.0.1:{port}/start")), &opts)
            .await
            .unwrap_err();
        assert!(
            matches!(err, UpstreamError::TooManyRedirects { max: 3, .. }),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::Protocol);
    });
    assert_eq!(server.join().unwrap().len(), 4);
}

#[test]
fn silent_server_hits_the_head_timeout_and_sees_fin() {
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 1, |_, mut s| {
        let head = read_head(&mut s);
        expect_eof(&mut s);
        head
    });
    run(async {
        let mut opts = opts();
        opts.head_timeout = Duration::from_millis(300);
        let start = Instant::now();
        let err = plain_client()
            .get(
                &url(&format!("http://127.0.0.1:{port}/live/u/secret/1.ts")),
                &opts,
            )
            .await
            .unwrap_err();
        let elapsed = start.elapsed();
        assert!(matches!(err, UpstreamError::HeadTimeout { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::ConnectionTimeout);
        // Not before the deadline; `run` fails the test if it never fires.
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("http://127.0.0.1:{port}")),
            "{err}"
        );
    });
    server.join().unwrap();
}

#[test]
fn stalled_body_fails_with_stalled_and_sees_fin() {
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 1, |_, mut s| {
        let head = read_head(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            .unwrap();
        s.write_all(&[0x47; 1000]).unwrap();
        expect_eof(&mut s);
        head
    });
    run(async {
        let mut opts = opts();
        opts.idle_timeout = Some(Duration::from_millis(300));
        let mut response = plain_client()
            .get(&url(&format!("http://127.0.0.1:{port}/")), &opts)
            .await
            .unwrap();
        let mut got = 0;
        let mut last = Instant::now();
        let err = loop {
            match response.next_chunk().await {
                Ok(Some(chunk)) => {
                    got += chunk.len();
                    last = Instant::now();
                }
                Ok(None) => panic!("stalled body ended cleanly"),
                Err(e) => break e,
            }
        };
        assert_eq!(got, 1000);
        assert!(matches!(err, UpstreamError::Stalled { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Stall);
        // Not before the idle deadline; `run` fails the test if it never fires.
        let waited = last.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(matches!(
            response.next_chunk().await,
            Err(UpstreamError::Closed { .. })
        ));
        assert!(response.next_chunk().await.is_err());
    });
    server.join().unwrap();
}

#[test]
fn closer_ends_a_pending_read_and_never_keeps_the_socket() {
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 2, |_, mut s| {
        let head = read_head(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        expect_eof(&mut s);
        head
    });
    run(async {
        let client = plain_client();
        let u = url(&format!("http://127.0.0.1:{port}/"));
        let mut response = client.get(&u, &opts()).await.unwrap();
        let closer = response.closer();
        let (result, ()) = tokio::join!(response.next_chunk(), async {
            tokio::task::yield_now().await;
            closer.close();
        });
        assert!(
            matches!(result, Err(UpstreamError::Closed { .. })),
            "{result:?}"
        );
        assert!(response.next_chunk().await.is_err());

        // A read abandoned by a select! leaves the response unusable, not corrupt; dropping the
        // response shuts the socket even though the Closer outlives it.
        let mut response = client.get(&u, &opts()).await.unwrap();
        let closer = response.closer();
        tokio::select! {
            biased;
            _ = response.next_chunk() => panic!("no body was sent"),
            () = tokio::task::yield_now() => {}
        }
        assert!(matches!(
            response.next_chunk().await,
            Err(UpstreamError::Closed { .. })
        ));
        drop(response);
        closer.close();
    });
    server.join().unwrap();
}

#[test]
fn refused_connection_is_a_connect_error() {
    let port = listen_v4().local_addr().unwrap().port();
    run(async {
        let err = plain_client()
            .get(&url(&format!("http://127.0.0.1:{port}/")), &opts())
            .await
            .unwrap_err();
        assert!(matches!(err, UpstreamError::Connect { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::ConnectionError);
    });
}

#[test]
fn bad_user_agents_are_refused_before_connecting() {
    run(async {
        let client = plain_client();
        // Nothing listens on port 9 of a TEST-NET address: a connect attempt would fail
        // differently (or time out), so these errors prove no attempt was made.
        let u = url("http://192.0.2.1:9/");
        for ua in ["", "   ", "x\r\nX-Injected: 1"] {
            let err = client.get(&u, &RequestOptions::new(ua)).await.unwrap_err();
            assert!(
                matches!(err, UpstreamError::InvalidHeader("User-Agent", _)),
                "{err:?}"
            );
            assert_eq!(err.kind(), ErrorKind::Config);
        }
        let mut opts = RequestOptions::new(UA);
        opts.referrer = Some("http://r/\r\nX-Injected: 1".to_owned());
        let err = client.get(&u, &opts).await.unwrap_err();
        assert!(
            matches!(err, UpstreamError::InvalidHeader("Referer", _)),
            "{err:?}"
        );
    });
}

#[test]
fn read_to_end_honours_the_limit() {
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 3, |i, mut s| {
        let head = read_head(&mut s);
        match i {
            0 => {
                s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .unwrap();
                write_chunked(&mut s, &pseudo_random(5000, 3)).unwrap();
            }
            1 => s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 999999\r\n\r\n")
                .unwrap(),
            _ => {
                s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .unwrap();
                // The client gives up past its limit and may close before all is sent.
                let _ = write_chunked(&mut s, &[b'x'; 5000]);
            }
        }
        head
    });
    run(async {
        let client = plain_client();
        let u = url(&format!(
            "http://127.0.0.1:{port}/player_api.php?username=u&password=p"
        ));
        let body: Bytes = client
            .get(&u, &opts())
            .await
            .unwrap()
            .read_to_end(5000)
            .await
            .unwrap();
        assert!(body == pseudo_random(5000, 3));
        for _ in 0..2 {
            let err = client
                .get(&u, &opts())
                .await
                .unwrap()
                .read_to_end(4999)
                .await
                .unwrap_err();
            assert!(
                matches!(err, UpstreamError::BodyTooLarge { limit: 4999, .. }),
                "{err:?}"
            );
        }
    });
    server.join().unwrap();
}

#[test]
fn ipv6_loopback_works_when_available() {
    let listener = match TcpListener::bind("[::1]:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipping the IPv6 test: cannot bind [::1]: {e}");
            return;
        }
    };
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 1, |_, mut s| {
        let head = read_head(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\n\r\nover v6").unwrap();
        head
    });
    run(async {
        let (response, body) = fetch(
            &plain_client(),
            &url(&format!("http://[::1]:{port}/v6")),
            &opts(),
        )
        .await
        .unwrap();
        assert_eq!((response.status, &body[..]), (200, &b"over v6"[..]));
    });
    let heads = server.join().unwrap();
    assert_request(&heads[0], "/v6", &format!("[::1]:{port}"));
}

// ---- TLS ----

struct Pki {
    /// The CA, written where `extra_ca_file` can point.
    ca_file: tempfile::NamedTempFile,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

/// A CA and a leaf for 127.0.0.1, ::1 and localhost signed by it.
fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "StreamForge test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec![
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        "localhost".to_owned(),
    ])
    .unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(ca_cert.pem().as_bytes()).unwrap();
    Pki {
        ca_file,
        chain: vec![leaf_cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
    }
}

fn server_config(
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    Arc::new(
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(pki.chain.clone(), PrivateKeyDer::Pkcs8(pki.key.clone_key()))
            .unwrap(),
    )
}

fn tls_client(pki: &Pki) -> Client {
    Client::new(&ClientOptions {
        extra_ca_file: Some(pki.ca_file.path().to_owned()),
    })
    .unwrap()
}

#[test]
fn https_relays_large_bodies_byte_exactly() {
    let pki = pki();
    let tls13 = server_config(&pki, &[&rustls::version::TLS13]);
    let tls12 = server_config(&pki, &[&rustls::version::TLS12]);
    let body = pseudo_random(4 << 20, 7);
    let served = body.clone();
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 5, move |i, s| {
        let config = if i == 1 { tls12.clone() } else { tls13.clone() };
        let mut tls = StreamOwned::new(ServerConnection::new(config.clone()).unwrap(), s);
        let head = read_head(&mut tls);
        let sni = tls.conn.server_name().map(str::to_owned);
        match i {
            0 => {
                write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    served.len()
                )
                .unwrap();
                tls.write_all(&served).unwrap();
            }
            1 => {
                tls.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .unwrap();
                write_chunked(&mut tls, &served).unwrap();
            }
            // Close-delimited, ended by close_notify.
            2 => {
                tls.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
                tls.write_all(&served).unwrap();
                tls.conn.send_close_notify();
            }
            // Close-delimited, ended by a bare TCP close after whole records: accepted.
            3 => {
                tls.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
                tls.write_all(&served).unwrap();
            }
            // A TCP close inside a record: truncation, not an end.
            _ => {
                tls.conn.set_buffer_limit(None);
                tls.conn
                    .writer()
                    .write_all(b"HTTP/1.1 200 OK\r\n\r\n")
                    .unwrap();
                tls.conn.writer().write_all(&served[..100_000]).unwrap();
                let mut records = Vec::new();
                while tls.conn.wants_write() {
                    tls.conn.write_tls(&mut records).unwrap();
                }
                tls.sock.write_all(&records[..records.len() - 5]).unwrap();
            }
        }
        tls.flush().unwrap();
        format!("{head}SNI: {}\r\n", sni.unwrap_or_default())
    });
    run(async {
        let client = tls_client(&pki);
        for (host, path) in [
            ("127.0.0.1", "/length"),
            ("127.0.0.1", "/chunked-tls12"),
            ("localhost", "/close-notify"),
            ("127.0.0.1", "/tcp-close"),
        ] {
            let u = url(&format!("https://{host}:{port}{path}"));
            let (response, got) = fetch(&client, &u, &opts()).await.unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(got.len(), body.len(), "{path}");
            assert!(got == body, "{path}: body differs");
        }
        let err = fetch(
            &client,
            &url(&format!("https://127.0.0.1:{port}/cut")),
            &opts(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, UpstreamError::UnexpectedEof { .. }),
            "{err:?}"
        );
    });
    let heads = server.join().unwrap();
    assert_request(&heads[0], "/length", &format!("127.0.0.1:{port}"));
    assert_request(&heads[2], "/close-notify", &format!("localhost:{port}"));
    // SNI carries DNS names only; an IP literal is verified against the IP SAN.
    assert_eq!(header_of(&heads[2], "sni"), Some("localhost"));
    assert_eq!(header_of(&heads[0], "sni"), Some(""));
}

#[test]
fn untrusted_certificate_is_a_tls_error() {
    let pki = pki();
    let config = server_config(&pki, &[&rustls::version::TLS13, &rustls::version::TLS12]);
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 1, move |_, s| {
        let mut tls = StreamOwned::new(ServerConnection::new(config.clone()).unwrap(), s);
        // The client aborts the handshake: the server sees an alert, not a request.
        let mut buf = [0u8; 1];
        assert!(tls.read(&mut buf).is_err());
        String::new()
    });
    run(async {
        // Only webpki roots: the test CA is unknown.
        let err = plain_client()
            .get(&url(&format!("https://127.0.0.1:{port}/")), &opts())
            .await
            .unwrap_err();
        assert!(matches!(err, UpstreamError::Tls { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Tls);
        assert!(err.to_string().contains("certificate"), "{err}");
    });
    server.join().unwrap();
}

#[test]
fn plain_server_on_https_is_a_tls_error() {
    let listener = listen_v4();
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener, 1, |_, mut s| {
        let mut hello = [0u8; 5];
        s.read_exact(&mut hello).unwrap();
        s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
        String::new()
    });
    run(async {
        let err = plain_client()
            .get(&url(&format!("https://127.0.0.1:{port}/")), &opts())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    });
    server.join().unwrap();
}
