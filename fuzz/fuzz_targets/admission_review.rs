//! Any bytes as the body of `POST /validate`: the webhook answers every one
//! with a status and a JSON body (a review, or `{"error": ...}`), never a
//! panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use stateless_operator::webhook::cluster::StaticCluster;
use stateless_operator::webhook::{Policy, Webhook, WebhookMetrics};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    webhook: Webhook,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}")),
        webhook: Webhook::new(
            Arc::new(
                StaticCluster::default()
                    .with_namespace("shop", Some("deny"))
                    .with_namespace("blog", Some("warn"))
                    .with_operator_user("system:serviceaccount:ops:stateless-operator"),
            ),
            Policy::default(),
            WebhookMetrics::default(),
        ),
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (status, body) = f.runtime.block_on(f.webhook.handle(data));
    assert!(matches!(status, 200 | 400 | 500), "status {status}");
    assert!(
        serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
        "a JSON body"
    );
});
