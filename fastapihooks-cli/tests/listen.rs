//! `fastapihooks listen`: the real binary on 127.0.0.1 (`--port 0`, the port read from its first
//! line), sent real requests signed as this crate's sender signs them, forwarding to the test
//! kit's receiver.

mod support;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use fastapihooks_core::signing::sign_sha256_hex;
use fastapihooks_testkit::{Receiver, Reply, client, eventually};
use support::WAIT;

const SECRET: &str = "listen-secret";

/// A JSON body as a sender might lay it out (spaces, a final newline), to arrive unchanged.
const BODY: &[u8] = b"{\"type\": \"order.created\",  \"data\":{\"id\":42}}\n";

/// What a child process wrote to one of its pipes so far, read as it comes.
type Captured = Arc<Mutex<Vec<u8>>>;

/// Reads `pipe` on a thread of its own into the returned buffer.
fn capture(mut pipe: impl Read + Send + 'static) -> Captured {
    let buffer = Captured::default();
    let sink = Arc::clone(&buffer);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buffer
}

fn text(buffer: &Captured) -> String {
    String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned()
}

/// The real `fastapihooks listen --port 0 <args>`, as a child process; killed when dropped.
struct Listen {
    child: Child,
    addr: SocketAddr,
    stdout: Captured,
    stderr: Captured,
}

impl Listen {
    /// Starts it and waits for its `listening on http://ADDR` line.
    async fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fastapihooks"))
            .args(["listen", "--port", "0"])
            .args(args)
            .env_remove("FASTAPIHOOKS_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the fastapihooks binary");
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        let addr = eventually(WAIT, || {
            text(&stdout)
                .lines()
                .next()
                .filter(|line| line.ends_with(|c: char| c.is_ascii_digit()))
                .and_then(|line| line.strip_prefix("listening on http://"))
                .and_then(|addr| addr.parse::<SocketAddr>().ok())
        })
        .await;
        let mut listen = Self {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            stdout,
            stderr,
        };
        match addr {
            Some(addr) => listen.addr = addr,
            None => {
                let _ = listen.child.kill();
                panic!(
                    "no `listening on` line; stdout: {:?}, stderr: {:?}",
                    text(&listen.stdout),
                    text(&listen.stderr)
                );
            }
        }
        listen
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits until its stdout holds `what`; returns the stdout.
    async fn printed(&self, what: &str) -> String {
        eventually(WAIT, || text(&self.stdout).contains(what)).await;
        text(&self.stdout)
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs `body` to `url`, signed with `secret` as the sender signs (`X-Fastapihooks-Signature`)
/// when one is given; returns the status and the response's content type.
async fn post(url: &str, body: &'static [u8], secret: Option<&str>) -> (u16, String) {
    let mut request = client()
        .post(url)
        .header("content-type", "application/json")
        .header("x-fastapihooks-event", "order.created")
        .body(body);
    if let Some(secret) = secret {
        let signature = sign_sha256_hex(secret.as_bytes(), body);
        request = request.header("x-fastapihooks-signature", signature);
    }
    let response = request.send().await.expect("listen answers");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (response.status().as_u16(), content_type)
}

#[tokio::test]
async fn a_signed_request_is_answered_2xx_and_its_body_pretty_printed() {
    let listen = Listen::start(&["--secret", SECRET]).await;
    let (status, _) = post(&listen.url("/hooks"), BODY, Some(SECRET)).await;
    assert!((200..300).contains(&status), "{status}");
    let stdout = listen.printed("\"id\": 42").await;
    assert!(stdout.contains("POST /hooks verified (sha256)"), "{stdout}");
    assert!(
        stdout.contains("  x-fastapihooks-event: order.created"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("  {\n    \"type\": \"order.created\",\n    \"data\": {\n      \"id\": 42\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn an_unsigned_request_is_answered_401_problem_json() {
    let listen = Listen::start(&["--secret", SECRET]).await;
    let (status, content_type) = post(&listen.url("/hooks"), BODY, None).await;
    assert_eq!(status, 401);
    assert_eq!(content_type, "application/problem+json");
    let stdout = listen.printed("not verified").await;
    assert!(
        stdout.contains("missing header x-fastapihooks-signature -> 401"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_request_signed_with_another_secret_is_answered_401() {
    let listen = Listen::start(&["--secret", SECRET]).await;
    let (status, _) = post(&listen.url("/"), BODY, Some("another-secret")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_forwarded_request_reaches_the_receiver_with_its_body_unchanged() {
    let receiver = Receiver::replying(Reply::status(202)).await;
    let forward_to = receiver.url("/app/hooks");
    let listen = Listen::start(&["--secret", SECRET, "--forward-to", &forward_to]).await;
    let (status, _) = post(&listen.url("/hooks"), BODY, Some(SECRET)).await;
    assert_eq!(status, 202, "the sender gets the forward's status");
    let received = receiver.wait_for(1).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].path, "/app/hooks");
    assert_eq!(&received[0].body[..], BODY);
    assert!(
        received[0].verified_with(SECRET),
        "the signature is passed on"
    );
    let stdout = listen.printed("forwarded to").await;
    assert!(
        stdout.contains(&format!("forwarded to {forward_to}: 202")),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_forward_that_fails_is_answered_502() {
    let nowhere = Receiver::reserve_port().await;
    let forward_to = format!("http://{nowhere}/hooks");
    let listen = Listen::start(&["--secret", SECRET, "--forward-to", &forward_to]).await;
    let (status, content_type) = post(&listen.url("/hooks"), BODY, Some(SECRET)).await;
    assert_eq!(status, 502);
    assert_eq!(content_type, "application/problem+json");
    listen.printed("failed").await;
}

#[tokio::test]
async fn a_body_over_max_body_is_answered_413() {
    let listen = Listen::start(&["--secret", SECRET, "--max-body", "16"]).await;
    let (status, _) = post(&listen.url("/hooks"), BODY, Some(SECRET)).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn without_a_secret_it_warns_that_nothing_is_verified_and_accepts_all() {
    let listen = Listen::start(&[]).await;
    let warned = eventually(WAIT, || {
        text(&listen.stderr).contains("warning: no --secret")
    })
    .await;
    assert!(warned, "{}", text(&listen.stderr));
    let (status, _) = post(&listen.url("/hooks"), BODY, None).await;
    assert!((200..300).contains(&status), "{status}");
    listen.printed("not checked (no --secret)").await;
}

#[test]
fn a_non_loopback_host_without_a_secret_is_refused() {
    let assert = support::fastapihooks()
        .env_remove("FASTAPIHOOKS_SECRET")
        .args(["listen", "--host", "0.0.0.0", "--port", "0"])
        .assert()
        .failure();
    let output = assert.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("listening on"),
        "it must not listen"
    );
}
