//! Leader election on a real Lease: one holder at a time, hand-over on release and expiry.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use stateless_operator::controller::leader::Elector;
use support::{TestNamespace, client};

#[tokio::test]
async fn one_leader_at_a_time() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "leader").await;
    let mut a = Elector::new(client.clone(), &ns.name, "op", "replica-a");
    let mut b = Elector::new(client.clone(), &ns.name, "op", "replica-b");
    for e in [&mut a, &mut b] {
        e.lease_duration = Duration::from_secs(2);
        e.renew_every = Duration::from_millis(500);
    }

    assert!(
        a.try_acquire().await.expect("a tries"),
        "a takes the free Lease"
    );
    assert!(
        !b.try_acquire().await.expect("b tries"),
        "b cannot take a live Lease"
    );
    assert!(
        a.try_acquire().await.expect("a renews"),
        "a renews its own Lease"
    );

    // Release hands over at once.
    a.release().await.expect("release");
    assert!(
        b.try_acquire().await.expect("b tries"),
        "b takes a released Lease"
    );
    let lease = ns.api::<Lease>().get("op").await.expect("lease");
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(spec.lease_transitions, Some(1));

    // Expiry: b stops renewing; after the lease duration a takes over and b has lost it.
    assert!(!a.try_acquire().await.expect("a tries"));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        a.try_acquire().await.expect("a tries"),
        "a takes an expired Lease"
    );
    let lost = tokio::time::timeout(Duration::from_secs(5), b.keep())
        .await
        .expect("b notices within one renewal");
    assert!(lost.to_string().contains("replica-a"), "{lost}");
}
