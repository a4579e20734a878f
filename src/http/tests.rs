//! Socket tests: `Server` inside `crate::net::run` with test handlers, std clients on threads.
//! Every wait is bounded; clients and server synchronise through channels, never sleeps.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown as Direction, SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, TestRunner};

use super::*;

/// Upper bound for anything a test waits on; far above what any step needs.
const LIMIT: Duration = Duration::from_secs(20);

fn config() -> ServerConfig {
    ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        ..ServerConfig::default()
    }
}

/// Runs `handler` under `config`, runs `client` on a thread against the first address, then fires
/// shutdown and checks that the server stops. Returns what `client` returned.
fn with_server<T: Send + 'static>(
    config: ServerConfig,
    handler: impl Handler,
    client: impl FnOnce(SocketAddr) -> T + Send + 'static,
) -> T {
    crate::net::run(async move {
        let (trigger, shutdown) = ShutdownTrigger::new();
        let server = Server::bind(config).expect("bind");
        let addr = server.local_addrs()[0];
        let serving = tokio_uring::spawn(server.run(Rc::new(handler), shutdown));
        let (tx, rx) = tokio::sync::oneshot::channel();
        thread::spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(|| client(addr))));
        });
        let outcome = tokio::time::timeout(LIMIT, rx)
            .await
            .expect("client did not finish in time")
            .expect("client thread vanished");
        trigger.fire();
        tokio::time::timeout(LIMIT, serving)
            .await
            .expect("server did not stop after shutdown")
            .expect("server task panicked");
        outcome.unwrap_or_else(|panic| resume_unwind(panic))
    })
    .expect("io_uring runtime")
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.set_write_timeout(Some(LIMIT)).unwrap();
    BufReader::new(stream)
}

fn send(conn: &mut BufReader<TcpStream>, bytes: &[u8]) {
    conn.get_mut().write_all(bytes).expect("send");
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> usize {
        self.header("content-length")
            .expect("Content-Length missing")
            .parse()
            .expect("Content-Length not a number")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response; its body by Content-Length unless `head_only`.
fn read_reply(conn: &mut BufReader<TcpStream>, head_only: bool) -> Reply {
    let mut line = String::new();
    conn.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1.1 "), "status line {line:?}");
    let status = line[9..12].parse().expect("status code");
    let mut headers = Vec::new();
    loop {
        line.clear();
        conn.read_line(&mut line).expect("header line");
        let trimmed = line.trim_end_matches("\r\n");
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(": ").expect("header syntax");
        headers.push((name.to_owned(), value.to_owned()));
    }
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if !head_only && reply.header("content-length").is_some() {
        let mut body = vec![0; reply.content_length()];
        conn.read_exact(&mut body).expect("body");
        reply.body = body;
    }
    reply
}

/// Asserts the server closed the connection: no more bytes, then end of stream (or a reset).
fn assert_closed(conn: &mut BufReader<TcpStream>) {
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "unexpected bytes {:?}",
        String::from_utf8_lossy(&rest)
    );
}

/// One of `seeds` with one to `max_edits` random edits (replace, insert, remove, truncate);
/// inserted bytes come from `alphabet`, so that edits also make tokens, not only noise.
pub(super) fn mutated(
    seeds: &'static [&'static [u8]],
    alphabet: &'static [u8],
    max_edits: usize,
) -> impl Strategy<Value = Vec<u8>> {
    let edit = (0..4u8, any::<Index>(), any::<u8>(), select(alphabet));
    (select(seeds), vec(edit, 1..=max_edits)).prop_map(|(seed, edits)| {
        let mut buf = seed.to_vec();
        for (op, at, byte, token) in edits {
            let at = at.index(buf.len() + 1);
            match op {
                0 if at < buf.len() => buf[at] = byte,
                1 => buf.insert(at, token),
                2 if at < buf.len() => {
                    buf.remove(at);
                }
                _ => buf.truncate(at),
            }
        }
        buf
    })
}

/// A runner for `cases` random inputs, for properties that run inside a socket test or count
/// outcomes across cases, which `proptest!` cannot. A failure prints its shrunk input.
pub(super) fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn echo(req: &Request) -> Response {
    if req.path == "/missing" {
        return Response::empty(404);
    }
    let text = format!(
        "{:?} {} {:?} {:?} {}",
        req.method,
        req.path,
        req.query,
        req.version,
        String::from_utf8_lossy(&req.body)
    );
    Response::full(200, vec![("Content-Type", "text/plain".into())], text)
}

#[test]
fn get_head_and_post() {
    with_server(config(), echo, |addr| {
        let mut c = connect(addr);
        send(
            &mut c,
            b"GET /lineup.json?show=all HTTP/1.1\r\nHost: t\r\n\r\n",
        );
        let get = read_reply(&mut c, false);
        assert_eq!(get.status, 200);
        assert_eq!(get.text(), "Get /lineup.json Some(\"show=all\") Http11 ");
        assert_eq!(get.content_length(), get.body.len());
        assert!(get.header("date").is_some_and(|d| d.ends_with(" GMT")));
        assert_eq!(get.header("content-type"), Some("text/plain"));

        send(&mut c, b"HEAD /lineup.json?show=all HTTP/1.1\r\n\r\n");
        let head = read_reply(&mut c, true);
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length(), get.body.len() + 1, "Head vs Get");

        // Had HEAD sent a body, this response would not parse.
        send(
            &mut c,
            b"POST /lineup.post?scan=start HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        );
        let post = read_reply(&mut c, false);
        assert_eq!(
            post.text(),
            "Post /lineup.post Some(\"scan=start\") Http11 hello"
        );

        send(&mut c, b"GET /missing HTTP/1.1\r\n\r\n");
        let missing = read_reply(&mut c, false);
        assert_eq!((missing.status, missing.content_length()), (404, 0));
    });
}

#[test]
fn http10_gets_a_length_and_a_close_unless_it_asks_to_keep_alive() {
    with_server(config(), echo, |addr| {
        let mut c = connect(addr);
        send(&mut c, b"GET /discover.json HTTP/1.0\r\n\r\n");
        let reply = read_reply(&mut c, false);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_length(), reply.body.len());
        assert!(reply.header("transfer-encoding").is_none());
        assert_eq!(reply.header("connection"), Some("close"));
        assert_closed(&mut c);

        let mut c = connect(addr);
        for _ in 0..2 {
            send(
                &mut c,
                b"POST /lineup.post HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            );
            let reply = read_reply(&mut c, false);
            assert_eq!(reply.text(), "Post /lineup.post None Http10 ");
            assert_eq!(reply.header("connection"), Some("keep-alive"));
        }
    });
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    with_server(config(), echo, |addr| {
        let mut c = connect(addr);
        send(&mut c, b"GET /one HTTP/1.1\r\n\r\n");
        assert!(read_reply(&mut c, false).text().contains("/one"));
        send(&mut c, b"GET /two HTTP/1.1\r\n\r\n");
        assert!(read_reply(&mut c, false).text().contains("/two"));

        send(
            &mut c,
            b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(read_reply(&mut c, false).text().contains("/a"));
        assert!(
            read_reply(&mut c, false)
                .text()
                .ends_with("/b None Http11 hi")
        );
        let last = read_reply(&mut c, false);
        assert!(last.text().contains("/c"));
        assert_eq!(last.header("connection"), Some("close"));
        assert_closed(&mut c);
    });
}

#[test]
fn half_closed_client_still_gets_its_answer() {
    with_server(config(), echo, |addr| {
        let mut c = connect(addr);
        send(&mut c, b"GET /half HTTP/1.1\r\n\r\n");
        c.get_ref().shutdown(Direction::Write).unwrap();
        assert!(read_reply(&mut c, false).text().contains("/half"));
        assert_closed(&mut c);
    });
}

#[test]
fn expect_continue_gets_an_interim_answer() {
    with_server(config(), echo, |addr| {
        let mut c = connect(addr);
        send(
            &mut c,
            b"POST /lineup.post HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        );
        let interim = read_reply(&mut c, true);
        assert_eq!(interim.status, 100);
        send(&mut c, b"abc");
        assert!(read_reply(&mut c, false).text().ends_with(" abc"));
    });
}

#[test]
fn refusals() {
    let config = ServerConfig {
        max_body_bytes: 16,
        ..config()
    };
    with_server(config, echo, |addr| {
        let mut c = connect(addr);
        send(
            &mut c,
            b"DELETE /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET /y HTTP/1.1\r\n\r\n",
        );
        let refused = read_reply(&mut c, false);
        assert_eq!(refused.status, 405);
        assert_eq!(refused.header("allow"), Some("GET, HEAD, POST"));
        assert_eq!(refused.content_length(), 0);
        // The connection stays usable after a well-formed request we do not serve.
        assert!(read_reply(&mut c, false).text().contains("/y"));

        let cases: [(&[u8], u16); 4] = [
            (
                b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n",
                400,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                411,
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", 413),
        ];
        for (raw, status) in cases {
            let mut c = connect(addr);
            send(&mut c, raw);
            let reply = read_reply(&mut c, false);
            assert_eq!(reply.status, status, "{:?}", String::from_utf8_lossy(raw));
            assert_eq!(reply.header("connection"), Some("close"));
            assert_closed(&mut c);
        }
    });
}

#[test]
fn hostile_clients_do_not_disturb_the_others() {
    let config = ServerConfig {
        head_timeout: Duration::from_millis(500),
        max_body_bytes: 64,
        ..config()
    };
    with_server(config, echo, |addr| {
        const SEEDS: &[&[u8]] = &[
            b"GET /lineup.json HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /lineup.post HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"HEAD /x?y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"GET / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        ];
        let workers: Vec<_> = (0..4)
            .map(|_| {
                thread::spawn(move || {
                    let hostile = mutated(SEEDS, b"\r\n :\x00\xff0123456789", 3);
                    runner(50)
                        .run(&hostile, |raw| {
                            let mut c = connect(addr);
                            let _ = c.get_mut().write_all(&raw);
                            let _ = c.get_ref().shutdown(Direction::Write);
                            let mut answer = Vec::new();
                            let _ = c.read_to_end(&mut answer);
                            prop_assert!(
                                answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
                                "{:?}",
                                String::from_utf8_lossy(&answer)
                            );
                            Ok(())
                        })
                        .unwrap();
                })
            })
            .collect();
        let mut c = connect(addr);
        for _ in 0..20 {
            send(&mut c, b"GET /still-here HTTP/1.1\r\n\r\n");
            assert!(read_reply(&mut c, false).text().contains("/still-here"));
        }
        for worker in workers {
            worker.join().unwrap();
        }
        send(&mut c, b"GET /after HTTP/1.1\r\n\r\n");
        assert!(read_reply(&mut c, false).text().contains("/after"));
    });
}

#[test]
fn oversized_head_is_431() {
    with_server(config(), echo, |addr| {
        let mut c = connect(addr);
        let mut raw = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
        raw.resize(9000, b'x');
        raw.extend_from_slice(b"\r\n\r\n");
        send(&mut c, &raw);
        assert_eq!(read_reply(&mut c, false).status, 431);
        assert_closed(&mut c);
    });
}

#[test]
fn slowloris_is_cut_while_others_are_served() {
    let head_timeout = Duration::from_millis(800);
    let config = ServerConfig {
        head_timeout,
        ..config()
    };
    with_server(config, echo, move |addr| {
        let (started_tx, started_rx) = mpsc::channel();
        let slow = thread::spawn(move || {
            let mut c = connect(addr);
            let start = Instant::now();
            send(&mut c, b"GET / HTTP/1.1\r\n");
            started_tx.send(()).unwrap();
            // Trickle a header byte at a time; the head never completes.
            let trickle = c.get_ref().try_clone().unwrap();
            let trickler = thread::spawn(move || {
                let mut trickle = trickle;
                for _ in 0..200 {
                    if trickle.write_all(b"X").is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            });
            let reply = read_reply(&mut c, false);
            let cut_at = Instant::now();
            assert_closed(&mut c);
            let _ = trickler.join();
            (reply.status, cut_at - start, cut_at)
        });
        started_rx.recv_timeout(LIMIT).unwrap();
        let mut c = connect(addr);
        send(&mut c, b"GET /normal HTTP/1.1\r\n\r\n");
        assert!(read_reply(&mut c, false).text().contains("/normal"));
        let served_at = Instant::now();
        let (status, cut_after, cut_at) = slow.join().unwrap();
        assert_eq!(status, 408);
        assert!(
            cut_after >= head_timeout - Duration::from_millis(100)
                && cut_after < head_timeout + Duration::from_secs(5),
            "cut after {cut_after:?}"
        );
        assert!(
            served_at < cut_at,
            "the normal client waited for the slow one"
        );
    });
}

#[test]
fn connection_cap_closes_the_excess_at_once() {
    let config = ServerConfig {
        max_connections: 2,
        ..config()
    };
    with_server(config, echo, |addr| {
        let mut first = connect(addr);
        let mut second = connect(addr);
        send(&mut first, b"GET /1 HTTP/1.1\r\n\r\n");
        send(&mut second, b"GET /2 HTTP/1.1\r\n\r\n");
        assert_eq!(read_reply(&mut first, false).status, 200);
        assert_eq!(read_reply(&mut second, false).status, 200);

        let mut third = connect(addr);
        let _ = third.get_mut().write_all(b"GET /3 HTTP/1.1\r\n\r\n");
        assert_closed(&mut third);

        // Freeing a slot lets the next client in.
        send(&mut first, b"GET /1 HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert_eq!(read_reply(&mut first, false).status, 200);
        assert_closed(&mut first);
        let mut fourth = connect(addr);
        send(&mut fourth, b"GET /4 HTTP/1.1\r\n\r\n");
        assert!(read_reply(&mut fourth, false).text().contains("/4"));
    });
}

#[test]
fn file_bodies_stream_from_disk() {
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(path.path(), &content).unwrap();
    let served = path.path().to_owned();
    let handler = move |_: &Request| {
        let file = std::fs::File::open(&served).unwrap();
        Response::full(200, Vec::new(), Body::file(file).unwrap())
    };
    let received = with_server(config(), handler, |addr| {
        let mut c = connect(addr);
        send(&mut c, b"HEAD /epg.xml HTTP/1.1\r\n\r\n");
        let head = read_reply(&mut c, true);
        assert_eq!(head.content_length(), 200_000);
        send(&mut c, b"GET /epg.xml HTTP/1.0\r\n\r\n");
        let reply = read_reply(&mut c, false);
        assert_closed(&mut c);
        reply.body
    });
    assert!(received == content, "file body differs");
}

#[test]
fn take_over_streams_until_the_client_leaves() {
    let (errors_tx, errors_rx) = mpsc::channel::<io::ErrorKind>();
    let handler = move |req: &Request| {
        if req.path != "/stream" {
            return echo(req);
        }
        let errors = errors_tx.clone();
        Response::take_over(move |conn: Connection, req: Request| async move {
            assert_eq!(req.path, "/stream");
            let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\n\r\n");
            let chunk = Bytes::from(vec![0x47u8; 188 * 100]);
            let (mut result, mut bufs) = conn.writev_all(vec![head]).await;
            while result.is_ok() {
                bufs.push(chunk.clone());
                bufs.push(chunk.clone());
                (result, bufs) = conn.writev_all(bufs).await;
                assert!(result.is_err() || bufs.is_empty());
            }
            let _ = errors.send(result.unwrap_err().kind());
        })
    };
    with_server(config(), handler, move |addr| {
        let mut c = connect(addr);
        send(&mut c, b"GET /stream HTTP/1.0\r\n\r\n");
        let head = read_reply(&mut c, true);
        assert_eq!(head.status, 200);
        assert!(head.header("content-length").is_none());
        let mut media = vec![0u8; 188 * 1000];
        c.read_exact(&mut media).unwrap();
        assert!(media.iter().all(|&b| b == 0x47));
        drop(c);
        let kind = errors_rx
            .recv_timeout(LIMIT)
            .expect("the handler saw no error");
        assert!(
            matches!(
                kind,
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{kind:?}"
        );
    });
}

#[test]
fn take_over_can_watch_for_the_client_closing() {
    let (done_tx, done_rx) = mpsc::channel::<io::Result<usize>>();
    let handler = move |_: &Request| {
        let done = done_tx.clone();
        Response::take_over(move |conn: Connection, _| async move {
            let (result, _) = conn.read(Vec::new()).await;
            let _ = done.send(result);
        })
    };
    with_server(config(), handler, move |addr| {
        let mut c = connect(addr);
        send(&mut c, b"GET /auto/v1 HTTP/1.1\r\n\r\n");
        c.get_ref().shutdown(Direction::Write).unwrap();
        let seen = done_rx.recv_timeout(LIMIT).expect("handler still waiting");
        assert_eq!(
            seen.unwrap(),
            0,
            "the client's close reads as end of stream"
        );
        assert_closed(&mut c);
    });
}

#[test]
fn shutdown_closes_listeners_idle_and_taken_over_connections() {
    crate::net::run(async {
        let config = ServerConfig {
            listen: vec![
                "127.0.0.1:0".parse().unwrap(),
                "127.0.0.1:0".parse().unwrap(),
            ],
            shutdown_grace: Duration::from_millis(300),
            ..ServerConfig::default()
        };
        let (taken_tx, mut taken_rx) = tokio::sync::mpsc::unbounded_channel();
        let handler = move |req: &Request| {
            if req.path == "/forever" {
                let taken = taken_tx.clone();
                // Holds the connection and never ends on its own.
                Response::take_over(move |conn: Connection, _| async move {
                    let _ = taken.send(());
                    let _keep = conn;
                    std::future::pending::<()>().await;
                })
            } else {
                echo(req)
            }
        };
        let (trigger, shutdown) = ShutdownTrigger::new();
        let server = Server::bind(config).unwrap();
        let addrs = server.local_addrs();
        assert_eq!(addrs.len(), 2);
        assert_ne!(addrs[0], addrs[1]);
        let serving = tokio_uring::spawn(server.run(Rc::new(handler), shutdown));

        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stopped_tx, stopped_rx) = mpsc::channel::<()>();
        let client = thread::spawn(move || {
            let mut idle = connect(addrs[0]);
            send(&mut idle, b"GET /a HTTP/1.1\r\n\r\n");
            assert_eq!(read_reply(&mut idle, false).status, 200);
            let mut other = connect(addrs[1]);
            send(&mut other, b"GET /b HTTP/1.1\r\n\r\n");
            assert_eq!(read_reply(&mut other, false).status, 200);
            let mut stream = connect(addrs[0]);
            send(&mut stream, b"GET /forever HTTP/1.1\r\n\r\n");
            ready_tx.send(()).unwrap();
            assert_closed(&mut idle);
            assert_closed(&mut other);
            assert_closed(&mut stream);
            stopped_rx.recv_timeout(LIMIT).unwrap();
            for addr in addrs {
                let refused = TcpStream::connect(addr);
                assert!(refused.is_err(), "{addr} still accepts");
            }
        });
        tokio::time::timeout(LIMIT, ready_rx)
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(LIMIT, taken_rx.recv()).await.unwrap();
        let started = Instant::now();
        trigger.fire();
        tokio::time::timeout(LIMIT, serving)
            .await
            .expect("serve did not return")
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        stopped_tx.send(()).unwrap();
        let joined = tokio::task::spawn_blocking(move || client.join());
        if let Err(panic) = joined.await.unwrap() {
            resume_unwind(panic);
        }
    })
    .unwrap();
}

#[test]
fn bind_errors_name_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap(), addr],
        ..ServerConfig::default()
    };
    let Err(e) = Server::bind(config) else {
        panic!("bound a port in use");
    };
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
    let empty = Server::bind(ServerConfig::default());
    assert!(empty.is_err());
}

#[test]
fn signals_fire_the_shutdown_once() {
    let (trigger, shutdown) = ShutdownTrigger::new();
    fire_on_signals(trigger.clone()).unwrap();
    let again = fire_on_signals(trigger).unwrap_err();
    assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
    assert!(!shutdown.is_fired());
    nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGTERM).unwrap();
    crate::net::run(async move {
        tokio::time::timeout(LIMIT, shutdown.fired())
            .await
            .expect("SIGTERM did not fire the shutdown");
    })
    .unwrap();
}
