//! The SSRF guard end to end: real dispatcher, real HTTP client, real listeners on loopback that
//! count every connection they get. Every target below must be refused, and none reached.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fastapihooks_core::dispatch::Dispatcher;
use fastapihooks_core::engine::{DeliveryEngine, NextStep};
use fastapihooks_core::signing::Sha256Hex;
use fastapihooks_core::{
    AttemptErrorKind, AttemptOutcome, Delivery, DeliveryStatus, Event, HttpConfig, MemoryStore,
    RetryPolicy, Secret, Subscription, Verdict,
};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback listener that counts the connections it accepts and answers each with 204.
struct CountingListener {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl CountingListener {
    async fn bind(addr: &str) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream
                        .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        Self { addr, connections }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Answers fixed names with fixed addresses, as an attacker's DNS would.
#[derive(Debug)]
struct HostileDns {
    v4_port: u16,
    v6_port: u16,
}

impl Resolve for HostileDns {
    fn resolve(&self, name: Name) -> Resolving {
        let answer: Vec<SocketAddr> = match name.as_str() {
            "rebind.example" => vec![SocketAddr::from(([127, 0, 0, 1], self.v4_port))],
            "mixed.example" => vec![
                SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], self.v6_port)),
                SocketAddr::from(([127, 0, 0, 1], self.v4_port)),
                SocketAddr::from(([169, 254, 169, 254], self.v4_port)),
            ],
            _ => Vec::new(),
        };
        Box::pin(async move {
            let addrs: Addrs = Box::new(answer.into_iter());
            Ok(addrs)
        })
    }
}

fn delivery_for(sub: &Subscription) -> Delivery {
    let event = Event::new("order.created", &serde_json::json!({"id": 1})).unwrap();
    Delivery::new(event, sub.id.clone())
}

fn subscription(url: &str) -> Subscription {
    Subscription::new("*", url)
        .unwrap()
        .with_secret(Secret::new("guard-test-secret").unwrap())
}

#[tokio::test]
async fn every_private_target_is_refused_and_none_is_reached() {
    let v4 = CountingListener::bind("127.0.0.1:0").await;
    let v6 = CountingListener::bind("[::1]:0").await;
    let (p, q) = (v4.port(), v6.port());
    let http = HttpConfig::default().resolver(Arc::new(HostileDns {
        v4_port: p,
        v6_port: q,
    }));
    // Names the system resolver maps to loopback go through the same guard; `localhost` is the
    // one every machine has.
    let guarded = Dispatcher::new(&http, Arc::new(Sha256Hex::new()), None).unwrap();
    let system_dns =
        Dispatcher::new(&HttpConfig::default(), Arc::new(Sha256Hex::new()), None).unwrap();

    let targets: Vec<(String, &Dispatcher)> = [
        format!("http://127.0.0.1:{p}/"),
        format!("http://127.1:{p}/"),
        format!("http://2130706433:{p}/"),
        format!("http://0x7f000001:{p}/"),
        format!("http://0x7f.0x0.0x0.0x1:{p}/"),
        format!("http://0177.0.0.1:{p}/"),
        format!("http://017700000001:{p}/"),
        format!("https://127.0.0.1:{p}/"),
        format!("http://0.0.0.0:{p}/"),
        format!("http://0:{p}/"),
        format!("http://[::ffff:127.0.0.1]:{p}/"),
        format!("http://[::ffff:7f00:1]:{p}/"),
        format!("http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/"),
        format!("http://[64:ff9b::127.0.0.1]:{p}/"),
        format!("http://[::127.0.0.1]:{p}/"),
        format!("http://[::1]:{q}/"),
        format!("http://[::]:{q}/"),
        format!("http://rebind.example:{p}/"),
        format!("http://mixed.example:{q}/"),
        format!("http://169.254.169.254:{p}/latest/meta-data/"),
        format!("http://[::ffff:169.254.169.254]:{p}/"),
        format!("http://10.0.0.1:{p}/"),
        format!("http://172.16.0.1:{p}/"),
        format!("http://192.168.0.1:{p}/"),
        format!("http://100.64.0.1:{p}/"),
        format!("http://198.18.0.1:{p}/"),
        format!("http://224.0.0.1:{p}/"),
        format!("http://255.255.255.255:{p}/"),
        format!("http://[fe80::1]:{p}/"),
        format!("http://[fc00::1]:{p}/"),
        format!("http://[2001:db8::1]:{p}/"),
    ]
    .into_iter()
    .map(|url| (url, &guarded))
    .chain([
        (format!("http://localhost:{p}/"), &system_dns),
        (format!("http://LocalHost:{p}/"), &system_dns),
    ])
    .collect();
    assert!(targets.len() >= 20);

    for (url, dispatcher) in &targets {
        let sub = subscription(url);
        let (attempt, verdict) = dispatcher.attempt(&delivery_for(&sub), &sub).await;
        let AttemptOutcome::Error { kind, message } = &attempt.outcome else {
            panic!("{url} was answered: {:?}", attempt.outcome);
        };
        assert_eq!(*kind, AttemptErrorKind::Blocked, "{url}: {message}");
        assert_eq!(
            verdict,
            Verdict::Reject {
                disable_subscription: false
            },
            "{url}"
        );
        assert!(message.contains("allow_network"), "{url}: {message}");
        println!("refused {url:<48} {message}");
    }

    // Control: the same listeners, reached once each through a client that allows loopback.
    // The accept queue is first in, first out, so a connection made by any refused target would
    // have been counted before these.
    let allowed = Dispatcher::new(
        &HttpConfig::default().allow_loopback(),
        Arc::new(Sha256Hex::new()),
        None,
    )
    .unwrap();
    for url in [
        format!("http://127.0.0.1:{p}/"),
        format!("http://[::1]:{q}/"),
    ] {
        let sub = subscription(&url);
        let (attempt, _) = allowed.attempt(&delivery_for(&sub), &sub).await;
        assert_eq!(
            attempt.status_code(),
            Some(204),
            "{url}: {:?}",
            attempt.outcome
        );
    }
    assert_eq!(
        v4.count(),
        1,
        "the IPv4 listener was reached by a refused target"
    );
    assert_eq!(
        v6.count(),
        1,
        "the IPv6 listener was reached by a refused target"
    );
}

#[tokio::test]
async fn a_blocked_delivery_fails_for_good_without_retrying() {
    let listener = CountingListener::bind("127.0.0.1:0").await;
    let dispatcher =
        Dispatcher::new(&HttpConfig::default(), Arc::new(Sha256Hex::new()), None).unwrap();
    let engine = DeliveryEngine::new(
        Arc::new(MemoryStore::new()),
        Vec::new(),
        dispatcher,
        RetryPolicy::schedule([std::time::Duration::from_millis(1); 3]),
        None,
    );
    let sub = subscription(&format!("http://localhost:{}/", listener.port()));
    let mut delivery = delivery_for(&sub);
    let next = engine.attempt(&mut delivery, &sub).await.next;
    assert_eq!(next, NextStep::Done(DeliveryStatus::Failed));
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(listener.count(), 0);
}

#[tokio::test]
async fn https_only_refuses_a_plain_http_subscription_before_connecting() {
    let listener = CountingListener::bind("127.0.0.1:0").await;
    let http = HttpConfig::default().allow_loopback().https_only(true);
    let dispatcher = Dispatcher::new(&http, Arc::new(Sha256Hex::new()), None).unwrap();
    let sub = subscription(&format!("http://127.0.0.1:{}/", listener.port()));
    let (attempt, verdict) = dispatcher.attempt(&delivery_for(&sub), &sub).await;
    assert!(matches!(
        attempt.outcome,
        AttemptOutcome::Error {
            kind: AttemptErrorKind::Blocked,
            ..
        }
    ));
    assert!(matches!(verdict, Verdict::Reject { .. }));
    assert_eq!(listener.count(), 0);
}
