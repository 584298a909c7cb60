//! Subscription input from users and stores: URL, event filter, custom header and stored JSON
//! validation must never panic; what validates must round-trip; the SSRF guard must judge every
//! URL that validates.
#![no_main]

use fastapihooks_core::dispatch::AddressPolicy;
use fastapihooks_core::subscription::WebhookUrl;
use fastapihooks_core::{Auth, EventFilter, Secret, Subscription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(url) = WebhookUrl::parse(input) {
        let again = WebhookUrl::parse(url.as_str()).expect("a validated URL re-validates");
        assert_eq!(again, url);
        let _ = AddressPolicy::default().check_url(&url);
        let _ = AddressPolicy::default().allow_loopback().check_url(&url);
    }

    if let Ok(filter) = input.parse::<EventFilter>() {
        let printed = filter.to_string();
        assert_eq!(printed.parse::<EventFilter>().ok(), Some(filter));
    }

    if let Some((name, value)) = input.split_once(':') {
        if let Ok(secret) = Secret::new(value) {
            let _ = Auth::header(name, secret);
        }
    }

    let _ = AddressPolicy::default().allow_network(input);

    if let Ok(sub) = serde_json::from_str::<Subscription>(input) {
        let json = serde_json::to_string(&sub).expect("a subscription serializes");
        let back: Subscription = serde_json::from_str(&json).expect("and reads back");
        assert_eq!(back, sub);
    }
});
