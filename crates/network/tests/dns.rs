//! The embedded DNS server seen from a client: real sockets, loopback only.
//!
//! Each test starts its own server on 127.0.0.1 with a port the kernel picks, and fake
//! upstreams on other 127.0.0.x addresses. Every wait is a socket read with a timeout.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use network::dns::{DnsServer, Records, TTL, UPSTREAM_TIMEOUT};

/// How long a client waits for any answer before the test fails.
const CLIENT_WAIT: Duration = Duration::from_secs(10);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn records() -> Arc<Records> {
    let records = Records::new();
    records.set(
        "c1",
        &["web".to_owned(), "www".to_owned(), "svc".to_owned()],
        &[ip("10.0.0.2"), ip("fd00::2")],
    );
    records.set(
        "c2",
        &["db".to_owned(), "svc".to_owned()],
        &[ip("10.0.0.3")],
    );
    Arc::new(records)
}

fn start(upstreams: Vec<SocketAddr>) -> (DnsServer, SocketAddr) {
    start_on("127.0.0.1:0", records(), upstreams)
}

fn start_on(
    listen: &str,
    records: Arc<Records>,
    upstreams: Vec<SocketAddr>,
) -> (DnsServer, SocketAddr) {
    let listen: SocketAddr = listen.parse().expect("listen address");
    let server = DnsServer::start(&[listen], records, upstreams).expect("start the server");
    let addr = server.local_addrs()[0];
    assert_eq!(addr.ip(), listen.ip());
    assert_ne!(addr.port(), 0);
    (server, addr)
}

fn query(name: &str, rtype: RecordType) -> Message {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(
        Name::from_ascii(name).expect("query name"),
        rtype,
    ));
    msg
}

fn udp_exchange_raw(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let client = if server.is_ipv4() { "127.0.0.1" } else { "::1" };
    udp_exchange_from(client, server, packet)
}

fn udp_exchange_from(client: &str, server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let client: IpAddr = client.parse().expect("client address");
    let socket = UdpSocket::bind((client, 0)).expect("bind client socket");
    socket.connect(server).expect("connect client socket");
    socket
        .set_read_timeout(Some(CLIENT_WAIT))
        .expect("set read timeout");
    socket.send(packet).expect("send query");
    let mut buf = vec![0u8; 65535];
    match socket.recv(&mut buf) {
        Ok(len) => Some(buf[..len].to_vec()),
        Err(_) => None,
    }
}

fn udp(server: SocketAddr, msg: &Message) -> Message {
    let client = if server.is_ipv4() { "127.0.0.1" } else { "::1" };
    udp_from(client, server, msg)
}

fn udp_from(client: &str, server: SocketAddr, msg: &Message) -> Message {
    let reply = udp_exchange_from(client, server, &msg.to_vec().expect("encode query"))
        .expect("an answer over UDP");
    let reply = Message::from_vec(&reply).expect("a DNS message");
    assert_eq!(reply.metadata.id, msg.metadata.id);
    assert_eq!(reply.metadata.message_type, MessageType::Response);
    reply
}

fn tcp_write(stream: &mut TcpStream, packet: &[u8]) {
    let mut framed = u16::try_from(packet.len())
        .expect("small query")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).expect("write query");
}

fn tcp_read(stream: &mut TcpStream) -> Message {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).expect("read answer length");
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).expect("read answer");
    Message::from_vec(&buf).expect("a DNS message")
}

fn tcp_connect(server: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&server, CLIENT_WAIT).expect("connect over TCP");
    stream
        .set_read_timeout(Some(CLIENT_WAIT))
        .expect("set read timeout");
    stream
}

fn tcp(server: SocketAddr, msg: &Message) -> Message {
    let mut stream = tcp_connect(server);
    tcp_write(&mut stream, &msg.to_vec().expect("encode query"));
    let reply = tcp_read(&mut stream);
    assert_eq!(reply.metadata.id, msg.metadata.id);
    reply
}

fn addrs_of(reply: &Message) -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    addrs.sort();
    addrs
}

#[test]
fn a_and_aaaa_from_records_over_udp_and_tcp() {
    let (server, addr) = start(Vec::new());
    for exchange in [udp, tcp] {
        let reply = exchange(addr, &query("web.", RecordType::A));
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.authoritative);
        assert_eq!(addrs_of(&reply), vec![ip("10.0.0.2")]);
        assert_eq!(reply.answers[0].ttl, TTL);
        assert_eq!(
            reply.answers[0].name,
            Name::from_ascii("web.").expect("name")
        );

        let reply = exchange(addr, &query("WWW", RecordType::AAAA));
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addrs_of(&reply), vec![ip("fd00::2")]);

        // A name two containers share answers both.
        let reply = exchange(addr, &query("svc.", RecordType::A));
        assert_eq!(addrs_of(&reply), vec![ip("10.0.0.2"), ip("10.0.0.3")]);
    }
    server.stop();
}

#[test]
fn known_name_of_the_other_family_is_noerror_without_answer() {
    let (server, addr) = start(Vec::new());
    let reply = udp(addr, &query("db.", RecordType::AAAA));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    // Other types of a known name likewise, rather than asking upstreams about it.
    let reply = udp(addr, &query("db.", RecordType::MX));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    server.stop();
}

#[test]
fn unknown_name_without_upstreams_is_refused() {
    let (server, addr) = start(Vec::new());
    for exchange in [udp, tcp] {
        let reply = exchange(addr, &query("example.com.", RecordType::A));
        assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
        assert!(reply.answers.is_empty());
    }
    server.stop();
}

#[test]
fn ptr_answers_container_name() {
    let (server, addr) = start(Vec::new());
    for (reverse, expected) in [
        ("2.0.0.10.in-addr.arpa.", "web."),
        ("3.0.0.10.in-addr.arpa.", "db."),
        (
            "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
            "web.",
        ),
    ] {
        let reply = udp(addr, &query(reverse, RecordType::PTR));
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{reverse}"
        );
        let targets: Vec<String> = reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(PTR(name)) => Some(name.to_ascii()),
                _ => None,
            })
            .collect();
        assert_eq!(targets, vec![expected.to_owned()], "{reverse}");
    }
    // An address that is no container's goes where unknown names go.
    let reply = udp(addr, &query("9.0.0.10.in-addr.arpa.", RecordType::PTR));
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    server.stop();
}

#[test]
fn malformed_packets_do_not_stop_the_server() {
    let (server, addr) = start(Vec::new());
    // Too short for a header: ignored, so the client waits in vain; a good query after it on
    // another socket is answered, which shows the server is still there.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind client socket");
    socket.send_to(&[1, 2, 3], addr).expect("send runt");
    // A header that promises five questions it does not carry: FORMERR with its ID.
    let bad = [0xbe, 0xef, 0x01, 0x00, 0, 5, 0, 0, 0, 0, 0, 0];
    let reply = udp_exchange_raw(addr, &bad).expect("an answer to a bad header");
    assert_eq!(reply[..2], [0xbe, 0xef]);
    assert_eq!(reply[3] & 0x0f, ResponseCode::FormErr.low());
    // Random bytes after a valid header.
    let mut junk = query("web.", RecordType::A).to_vec().expect("encode query");
    junk.truncate(14);
    junk.extend_from_slice(&[0xff; 40]);
    let _ = udp_exchange_raw(addr, &junk);
    // Over TCP: a framed runt, then the connection is dropped or answered; then a fresh
    // connection still works.
    let mut stream = tcp_connect(addr);
    tcp_write(&mut stream, &[9, 9, 9]);
    drop(stream);
    let reply = udp(addr, &query("web.", RecordType::A));
    assert_eq!(addrs_of(&reply), vec![ip("10.0.0.2")]);
    let reply = tcp(addr, &query("db.", RecordType::A));
    assert_eq!(addrs_of(&reply), vec![ip("10.0.0.3")]);
    // A response sent to the server is ignored, not answered: the first datagram back is the
    // answer to the query sent after it (one server thread takes them in order).
    let mut response = query("web.", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    let follow_up = query("db.", RecordType::A);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind client socket");
    socket.connect(addr).expect("connect client socket");
    socket
        .set_read_timeout(Some(CLIENT_WAIT))
        .expect("set read timeout");
    socket
        .send(&response.to_vec().expect("encode"))
        .expect("send response");
    socket
        .send(&follow_up.to_vec().expect("encode"))
        .expect("send query");
    let mut buf = [0u8; 512];
    let len = socket.recv(&mut buf).expect("an answer to the follow-up");
    let reply = Message::from_vec(&buf[..len]).expect("a DNS message");
    assert_eq!(
        reply.metadata.id, follow_up.metadata.id,
        "a response was answered"
    );
    server.stop();
}

/// A fake upstream nameserver on its own loopback address: answers every A query with its
/// one address, over UDP and TCP; over UDP it answers `big.example.` only with a truncated,
/// empty answer, so the server must come back over TCP.
struct FakeUpstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

const FAKE_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OTHER_FAKE_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn fake_reply(packet: &[u8], udp: bool, answer: Ipv4Addr) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    let question = query.queries.first()?.clone();
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_available = true;
    reply.add_query(question.clone());
    if udp && question.name().to_ascii() == "big.example." {
        reply.metadata.truncation = true;
    } else {
        reply.add_answer(Record::from_rdata(
            question.name().clone(),
            60,
            RData::A(A(answer)),
        ));
    }
    reply.to_vec().ok()
}

impl FakeUpstream {
    fn start(ip: &str) -> FakeUpstream {
        FakeUpstream::answering(ip, FAKE_ANSWER)
    }

    fn answering(ip: &str, answer: Ipv4Addr) -> FakeUpstream {
        let udp = UdpSocket::bind((ip.parse::<IpAddr>().expect("ip"), 0)).expect("bind fake udp");
        let addr = udp.local_addr().expect("fake address");
        let tcp = TcpListener::bind(addr).expect("bind fake tcp on the same port");
        let stop = Arc::new(AtomicBool::new(false));
        // Both threads block; Drop wakes them with a datagram and a connection.
        let udp_stop = Arc::clone(&stop);
        let udp_thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65535];
            while let Ok((len, peer)) = udp.recv_from(&mut buf) {
                if udp_stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(reply) = fake_reply(&buf[..len], true, answer) {
                    let _ = udp.send_to(&reply, peer);
                }
            }
        });
        let tcp_stop = Arc::clone(&stop);
        let tcp_thread = std::thread::spawn(move || {
            while let Ok((mut stream, _)) = tcp.accept() {
                if tcp_stop.load(Ordering::SeqCst) {
                    return;
                }
                stream
                    .set_read_timeout(Some(CLIENT_WAIT))
                    .expect("set read timeout");
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut buf).is_err() {
                    continue;
                }
                if let Some(reply) = fake_reply(&buf, false, answer) {
                    tcp_write(&mut stream, &reply);
                }
            }
        });
        FakeUpstream {
            addr,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(waker) = UdpSocket::bind((self.addr.ip(), 0)) {
            let _ = waker.send_to(&[0], self.addr);
        }
        let _ = TcpStream::connect_timeout(&self.addr, CLIENT_WAIT);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A UDP port on loopback where nothing listens: the kernel answers port unreachable.
fn closed_port(ip: &str) -> SocketAddr {
    let socket = UdpSocket::bind((ip.parse::<IpAddr>().expect("ip"), 0)).expect("bind");
    socket.local_addr().expect("address")
    // Dropped here: the port is closed again.
}

#[test]
fn forwards_unknown_names_to_upstream() {
    let upstream = FakeUpstream::start("127.0.0.2");
    let (server, addr) = start(vec![upstream.addr]);
    for exchange in [udp, tcp] {
        let reply = exchange(addr, &query("example.com.", RecordType::A));
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addrs_of(&reply), vec![IpAddr::V4(FAKE_ANSWER)]);
    }
    // A truncated UDP answer upstream is fetched again over TCP.
    let reply = udp(addr, &query("big.example.", RecordType::A));
    assert!(!reply.metadata.truncation);
    assert_eq!(addrs_of(&reply), vec![IpAddr::V4(FAKE_ANSWER)]);
    // Names the server knows never reach the upstream.
    let reply = udp(addr, &query("web.", RecordType::A));
    assert_eq!(addrs_of(&reply), vec![ip("10.0.0.2")]);
    server.stop();
}

#[test]
fn next_upstream_is_tried_when_one_refuses_the_connection() {
    let upstream = FakeUpstream::start("127.0.0.4");
    let (server, addr) = start(vec![closed_port("127.0.0.4"), upstream.addr]);
    let reply = udp(addr, &query("example.org.", RecordType::A));
    assert_eq!(addrs_of(&reply), vec![IpAddr::V4(FAKE_ANSWER)]);
    server.stop();
}

#[test]
fn unreachable_upstreams_give_servfail_within_the_timeout() {
    // One upstream that never answers (a bound socket nobody reads) and one whose port is
    // closed.
    let silent = UdpSocket::bind("127.0.0.3:0").expect("bind silent upstream");
    let silent_addr = silent.local_addr().expect("silent address");
    let (server, addr) = start(vec![silent_addr, closed_port("127.0.0.3")]);
    let started = Instant::now();
    let reply = udp(addr, &query("example.net.", RecordType::A));
    let took = started.elapsed();
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert!(
        took >= UPSTREAM_TIMEOUT.mul_f32(0.9),
        "answered before the silent upstream timed out: {took:?}"
    );
    assert!(
        took < UPSTREAM_TIMEOUT * 2,
        "SERVFAIL took {took:?}, more than one upstream timeout"
    );
    server.stop();
}

#[test]
fn stop_closes_sockets_promptly_even_with_a_forward_in_flight() {
    let silent = UdpSocket::bind("127.0.0.5:0").expect("bind silent upstream");
    let (server, addr) = start(vec![silent.local_addr().expect("silent address")]);
    // A query the server forwards to an upstream that never answers; wait until the upstream
    // has it, so the forward is surely in flight.
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind client");
    client
        .send_to(
            &query("slow.example.", RecordType::A)
                .to_vec()
                .expect("encode"),
            addr,
        )
        .expect("send query");
    silent
        .set_read_timeout(Some(CLIENT_WAIT))
        .expect("set read timeout");
    let mut buf = [0u8; 512];
    silent
        .recv_from(&mut buf)
        .expect("the forward reached the upstream");

    let started = Instant::now();
    server.stop();
    let took = started.elapsed();
    assert!(
        took < UPSTREAM_TIMEOUT,
        "stop waited {took:?} for the forward"
    );
    // The port is free again on both protocols: every socket of the server is closed, and
    // since each listening socket belongs to the thread that serves it (and, for UDP, to the
    // forwards in flight), those threads have ended.
    UdpSocket::bind(addr).expect("UDP port free after stop");
    TcpListener::bind(addr).expect("TCP port free after stop");
}

#[test]
fn drop_stops_the_server() {
    let (server, addr) = start(Vec::new());
    drop(server);
    UdpSocket::bind(addr).expect("UDP port free after drop");
    TcpListener::bind(addr).expect("TCP port free after drop");
}

#[test]
fn a_container_with_its_own_upstreams_uses_them() {
    let network_upstream = FakeUpstream::answering("127.0.0.7", FAKE_ANSWER);
    let own_upstream = FakeUpstream::answering("127.0.0.8", OTHER_FAKE_ANSWER);
    let records = records();
    // The test client plays a container at 127.0.0.9 that was started with --dns.
    records.set("client", &["client".to_owned()], &[ip("127.0.0.9")]);
    records.set_upstreams("client", &[own_upstream.addr]);
    let (server, addr) = start_on(
        "127.0.0.1:0",
        Arc::clone(&records),
        vec![network_upstream.addr],
    );
    let q = query("example.com.", RecordType::A);
    assert_eq!(
        addrs_of(&udp_from("127.0.0.9", addr, &q)),
        vec![IpAddr::V4(OTHER_FAKE_ANSWER)]
    );
    assert_eq!(
        addrs_of(&udp_from("127.0.0.10", addr, &q)),
        vec![IpAddr::V4(FAKE_ANSWER)]
    );
    // Back to the network's upstreams.
    records.set_upstreams("client", &[]);
    assert_eq!(
        addrs_of(&udp_from("127.0.0.9", addr, &q)),
        vec![IpAddr::V4(FAKE_ANSWER)]
    );
    server.stop();
}

#[test]
fn serves_ipv6_listen_addresses() {
    let has_ipv6_loopback = std::fs::read_to_string("/proc/net/if_inet6")
        .map(|t| {
            t.lines()
                .any(|l| l.starts_with("00000000000000000000000000000001"))
        })
        .unwrap_or(false);
    assert!(
        has_ipv6_loopback,
        "this test needs ::1 on lo (IPv6 is disabled on this host)"
    );
    let (server, addr) = start_on("[::1]:0", records(), Vec::new());
    for exchange in [udp, tcp] {
        let reply = exchange(addr, &query("web.", RecordType::AAAA));
        assert_eq!(addrs_of(&reply), vec![ip("fd00::2")]);
    }
    server.stop();
}

#[test]
fn large_answers_are_truncated_to_what_the_client_takes() {
    let records = Records::new();
    let many: Vec<IpAddr> = (1..=60u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(10, 1, 0, i)))
        .collect();
    records.set("c1", &["many".to_owned()], &many);
    let (server, addr) = start_on("127.0.0.1:0", Arc::new(records), Vec::new());

    // Plain UDP: at most 512 bytes, marked truncated so the client retries over TCP.
    let reply = udp(addr, &query("many.", RecordType::A));
    assert!(reply.metadata.truncation);
    assert!(!reply.answers.is_empty() && reply.answers.len() < many.len());
    assert!(reply.to_vec().expect("encode").len() <= 512);

    // Over TCP, or with an EDNS buffer big enough, everything.
    let reply = tcp(addr, &query("many.", RecordType::A));
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), many.len());
    let mut edns_query = query("many.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    edns_query.edns = Some(edns);
    let reply = udp(addr, &edns_query);
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), many.len());
    assert!(reply.edns.is_some(), "an EDNS query gets an EDNS answer");
    server.stop();
}
