//! The web console in a real browser: Debian's headless Chromium, driven through chromedriver
//! (WebDriver), against an application serving `AdminApi` on 127.0.0.1 and delivering
//! in-process to a real receiver. A person's path through it: create a subscription, send a
//! test event to a failing receiver and watch it appear as dead, fix the receiver, replay it
//! from the console, see it delivered.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`.ci/run` installs the `chromium` and
//! `chromium-driver` packages when missing); elsewhere than CI the test says it skipped without
//! them. `UPDATE_SCREENSHOTS=1` writes the screenshots of the README into `docs/console/`.
#![cfg(all(feature = "admin", feature = "sqlite"))]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use fantoccini::{Client, ClientBuilder, Locator};
use fastapihooks::admin::AdminApi;
use fastapihooks::prelude::*;
use fastapihooks::{Emitter, Store};
use fastapihooks_testkit::{Receiver, SECRET, TempSqlite, in_ci};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(30);
/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

/// chromedriver, on a port of its own; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let status = format!("{}/status", driver.url);
        let started = Instant::now();
        while reqwest::get(&status).await.is_err() {
            assert!(
                started.elapsed() < WAIT,
                "chromedriver did not answer on {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the browser is here: in CI it must be.
fn browser_installed() -> bool {
    let here =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    assert!(
        here || !in_ci(),
        "CI needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
    );
    if !here {
        eprintln!("skipped: no {CHROMIUM} or {CHROMEDRIVER}");
    }
    here
}

/// Goes to `#fragment` of the console, again every half second, until `css` matches.
async fn until_shown(browser: &Client, url: &str, css: &str) -> fantoccini::elements::Element {
    let started = Instant::now();
    loop {
        browser.goto(url).await.unwrap();
        browser.refresh().await.unwrap();
        let found = browser
            .wait()
            .at_most(Duration::from_millis(500))
            .for_element(Locator::Css(css))
            .await;
        if let Ok(element) = found {
            return element;
        }
        assert!(started.elapsed() < WAIT, "`{css}` never appeared at {url}");
    }
}

async fn click(browser: &Client, css: &str) {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("`{css}`: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/console");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_watched_and_replayed_from_the_console() {
    if !browser_installed() {
        return;
    }
    // The receiver fails until it is fixed.
    let (receiver, fix) = Receiver::broken(503).await;
    // The application: the API and console under /admin, delivering in-process, no retries.
    let (_guard, store) = TempSqlite::store().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let backend = Emitter::builder()
        .shared_store(store.clone())
        .secret(Secret::new(SECRET).unwrap())
        .http(HttpConfig::default().allow_loopback())
        .retry(RetryPolicy::none())
        .build_backend()
        .unwrap();
    let app = Router::new().nest(
        "/admin",
        AdminApi::new(store.clone(), Arc::new(backend)).router(),
    );
    let addr = fastapihooks_testkit::serve(app).await;
    let console = format!("http://{addr}/admin/console/");

    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // Create a subscription in the console: its secret is shown once.
    browser
        .goto(&format!("{console}#/subscriptions"))
        .await
        .unwrap();
    let form = "#new-subscription";
    let url_input = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!("{form} input[name=url]")))
        .await
        .unwrap();
    // By keyboard: the URL, then Enter submits the form.
    url_input
        .send_keys(&format!("{}{ENTER}", receiver.url("/hooks")))
        .await
        .unwrap();
    let secret = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#secret[open] #secret-value"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    click(&browser, "#secret-done").await;

    // Its page: send a test event to the failing receiver.
    click(&browser, "button[data-action=send-test-event]").await;
    let subscriptions = store.list_subscriptions(&Default::default()).await.unwrap();
    assert_eq!(subscriptions.len(), 1, "created through the console");
    let subscription = subscriptions[0].id.to_string();
    assert_eq!(subscriptions[0].secret.as_ref().unwrap().expose(), secret);
    receiver.wait_for(1).await;

    // The delivery shows as dead in the deliveries list.
    let dead = until_shown(
        &browser,
        &format!("{console}#/deliveries?subscription={subscription}"),
        "tr[data-delivery] [data-status=dead]",
    )
    .await;
    let _ = dead;
    screenshot(&browser, "deliveries").await;
    let row = browser
        .find(Locator::Css("tr[data-delivery]"))
        .await
        .unwrap();
    let delivery = row.attr("data-delivery").await.unwrap().unwrap();

    // Fix the receiver, open the delivery, replay it (confirming), and see it delivered.
    fix.apply();
    click(&browser, &format!("a[href='#/deliveries/{delivery}']")).await;
    let attempt = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("tr[data-attempt='1']"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        attempt.contains("503"),
        "the failed attempt is listed: {attempt}"
    );
    click(&browser, "#replay-one").await;
    // The confirmation takes the focus on its Confirm button: Enter confirms.
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#confirm[open]"))
        .await
        .unwrap();
    let focused = browser.active_element().await.unwrap();
    assert_eq!(
        focused.attr("id").await.unwrap().as_deref(),
        Some("confirm-ok")
    );
    focused.send_keys(ENTER).await.unwrap();
    receiver.wait_for(2).await;
    until_shown(
        &browser,
        &format!("{console}#/deliveries/{delivery}"),
        "#delivery-status [data-status=delivered]",
    )
    .await;
    let attempts = browser
        .find(Locator::Css("tr[data-attempt='2']"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(attempts.contains("200"), "the replay's attempt: {attempts}");
    screenshot(&browser, "delivery").await;
    assert!(
        receiver.received().iter().all(|r| r.id() == delivery),
        "the replay kept the delivery id"
    );

    // The overview's chart, and the page at phone width.
    until_shown(&browser, &format!("{console}#/overview"), ".chart svg rect").await;
    screenshot(&browser, "overview").await;
    browser.set_window_size(390, 844).await.unwrap();
    until_shown(
        &browser,
        &format!("{console}#/subscriptions"),
        "tr[data-subscription]",
    )
    .await;
    screenshot(&browser, "phone").await;
    browser.close().await.unwrap();
}
