use super::*;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};

fn policy(algorithm: JwtAlgorithm) -> Policy {
    Policy {
        algorithm,
        rotation_period: SignedDuration::from_hours(720),
        token_lifetime: SignedDuration::from_hours(24),
        propagation: SignedDuration::from_mins(2),
    }
}

fn t0() -> Timestamp {
    "2026-12-01T00:00:00Z".parse().expect("timestamp")
}

fn at(hours: i64) -> Timestamp {
    after(t0(), SignedDuration::from_hours(hours))
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

/// Advance `set` to `now` as the controller does; the changes made.
fn tick(set: &mut KeySet, policy: &Policy, now: Timestamp, request: Option<&str>) -> Vec<String> {
    let plan = set.schedule.plan(policy, now, request);
    set.advance(&plan, policy, now, request, &mut keys::generate)
        .expect("advance")
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

/// Sign a token as an app would: the mounted PEM and kid files.
fn sign(data: &BTreeMap<String, ByteString>) -> String {
    let file = |k: &str| String::from_utf8(data[k].0.clone()).expect("utf-8");
    let jwk: Value = serde_json::from_str(&file(files::SIGNING_JWK)).expect("jwk");
    let pem = file(files::SIGNING_KEY);
    let (algorithm, key) = match jwk["alg"].as_str() {
        Some("EdDSA") => (
            jsonwebtoken::Algorithm::EdDSA,
            EncodingKey::from_ed_pem(pem.as_bytes()),
        ),
        Some("ES256") => (
            jsonwebtoken::Algorithm::ES256,
            EncodingKey::from_ec_pem(pem.as_bytes()),
        ),
        Some("RS256") => (
            jsonwebtoken::Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem.as_bytes()),
        ),
        other => panic!("unexpected alg {other:?}"),
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(file(files::KEY_ID));
    let claims = Claims {
        sub: "user-1".into(),
        exp: jsonwebtoken::get_current_timestamp() + 3600,
    };
    encode(&header, &claims, &key.expect("encoding key")).expect("sign")
}

/// Verify a token as any replica would: by its kid, against the JWKS file.
fn verify(token: &str, data: &BTreeMap<String, ByteString>) -> Result<String, String> {
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(&data[files::JWKS].0).expect("JWKS parses as a JwkSet");
    let header = decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks
        .find(&kid)
        .ok_or(format!("kid {kid} not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let claims =
        decode::<Claims>(token, &key, &Validation::new(header.alg)).map_err(|e| e.to_string())?;
    Ok(claims.claims.sub)
}

#[test]
fn durations_are_go_durations_of_hours_minutes_seconds() {
    for (text, seconds) in [
        ("720h", 720 * 3600),
        ("1h30m", 5400),
        ("90s", 90),
        ("2m5s", 125),
        ("1h0m1s", 3601),
    ] {
        assert_eq!(
            parse_duration("f", text).expect(text),
            secs(seconds),
            "{text}"
        );
    }
    for bad in [
        "", "h", "30d", "1.5h", "1m1h", "-1h", "1h ", "10", "1234567h",
    ] {
        assert!(
            matches!(
                parse_duration("rotationPeriod", bad),
                Err(SigningKeyError::BadDuration { .. })
            ),
            "{bad:?} should be refused"
        );
    }
}

#[test]
fn bad_rotation_settings_are_refused_with_what_to_change() {
    let spec = |period: &str, lifetime: &str| JwtSpec {
        algorithm: JwtAlgorithm::EdDSA,
        rotation_period: Some(period.into()),
        token_lifetime: Some(lifetime.into()),
    };
    let err = |period, lifetime| {
        Policy::from_spec(&spec(period, lifetime), secs(120))
            .expect_err("refused")
            .to_string()
    };
    assert!(err("30m", "1m").contains("at least 1h"));
    assert!(err("9000h", "1h").contains("at most 8760h"));
    assert!(err("1h", "0s").contains("at least 1s"));
    let longer = err("24h", "48h");
    assert!(longer.contains("longer than rotationPeriod") && longer.contains("shorten"));
    assert!(err("30d", "1h").contains("such as 720h"));
    let defaults = JwtSpec {
        algorithm: JwtAlgorithm::ES256,
        rotation_period: None,
        token_lifetime: None,
    };
    let policy = Policy::from_spec(&defaults, secs(120)).expect("defaults are valid");
    assert_eq!(policy.rotation_period, SignedDuration::from_hours(720));
    assert_eq!(policy.token_lifetime, SignedDuration::from_hours(24));
}

#[test]
fn a_new_set_publishes_active_and_next_and_mounts_only_the_active_private_key() {
    let policy = policy(JwtAlgorithm::EdDSA);
    let set = KeySet::new(&policy, t0(), None, &mut keys::generate).expect("new");
    let s = &set.schedule;
    assert_ne!(s.active.kid, s.next.kid);
    let jwks = set.jwks();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(kids, [s.active.kid.as_str(), s.next.kid.as_str()]);
    assert!(
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k.get("d").is_none()),
        "a private member in the JWKS"
    );
    let data = set.secret_data();
    assert_eq!(data[files::KEY_ID].0, s.active.kid.as_bytes());
    for mounted in files::MOUNTED {
        assert!(data.contains_key(mounted), "{mounted}");
    }
    assert!(!files::MOUNTED.contains(&files::NEXT_KEY));
    assert!(!files::MOUNTED.contains(&files::NEXT_JWK));
    // Nothing is due until the period ends; then the next key takes over.
    let plan = s.plan(&policy, at(1), None);
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(plan.wake_at, Some(at(720)));
    assert_eq!(s.next_rotation(&policy), at(720));
    assert!(s.plan(&policy, at(720), None).rotate);
}

#[test]
fn the_secret_round_trips_and_a_tampered_one_is_refused() {
    let policy = policy(JwtAlgorithm::ES256);
    let set = KeySet::new(&policy, t0(), Some("r1"), &mut keys::generate).expect("new");
    let annotation = set.annotation();
    let data = set.secret_data();
    let read = KeySet::from_secret(Some(&annotation), &data).expect("read back");
    assert_eq!(read, set);
    assert!(!annotation.contains("BEGIN"), "the annotation holds no key");

    let mut wrong_kid = data.clone();
    wrong_kid.insert(files::KEY_ID.into(), ByteString(b"someone-else".to_vec()));
    let err = KeySet::from_secret(Some(&annotation), &wrong_kid).expect_err("refused");
    assert!(err.to_string().contains("is not the active key"), "{err}");
    let mut no_next = data.clone();
    no_next.remove(files::NEXT_KEY);
    let err = KeySet::from_secret(Some(&annotation), &no_next).expect_err("refused");
    assert!(err.to_string().contains(files::NEXT_KEY), "{err}");
    let err = KeySet::from_secret(None, &data).expect_err("refused");
    assert!(err.to_string().contains(SCHEDULE_ANNOTATION), "{err}");
}

#[test]
fn a_token_signed_before_a_rotation_verifies_after_it_and_not_after_the_overlap() {
    for algorithm in [
        JwtAlgorithm::EdDSA,
        JwtAlgorithm::ES256,
        JwtAlgorithm::RS256,
    ] {
        let policy = policy(algorithm);
        let mut set = KeySet::new(&policy, t0(), None, &mut keys::generate).expect("new");
        let before = set.secret_data();
        let token = sign(&before);
        assert_eq!(
            verify(&token, &before).as_deref(),
            Ok("user-1"),
            "{algorithm}"
        );

        // A pod that has not seen the rotation yet verifies tokens of the
        // new active key: it was published as the next key long before.
        let changes = tick(&mut set, &policy, at(720), None);
        assert_eq!(changes.len(), 1, "{changes:?}");
        let rotated = set.secret_data();
        let new_token = sign(&rotated);
        assert_eq!(
            verify(&new_token, &before).as_deref(),
            Ok("user-1"),
            "{algorithm}"
        );
        // And every pod verifies the old token after the rotation.
        assert_eq!(
            verify(&token, &rotated).as_deref(),
            Ok("user-1"),
            "{algorithm}"
        );

        // Still published until the lifetime and the propagation are over...
        let overlap_end = at(720 + 24) + policy.propagation;
        let plan = set.schedule.plan(&policy, overlap_end - secs(1), None);
        assert!(plan.is_empty(), "{algorithm}: {plan:?}");
        assert_eq!(plan.wake_at, Some(overlap_end));
        // ...then gone, and the old token verifies nowhere.
        let changes = tick(&mut set, &policy, overlap_end, None);
        assert!(changes[0].starts_with("unpublished retired"), "{changes:?}");
        let pruned = set.secret_data();
        let err = verify(&token, &pruned).expect_err("the retired key is gone");
        assert!(err.contains("not in the JWKS"), "{err}");
        assert_eq!(verify(&new_token, &pruned).as_deref(), Ok("user-1"));
    }
}

#[test]
fn a_rotation_asked_for_by_annotation_happens_once_and_waits_for_a_known_next_key() {
    let policy = policy(JwtAlgorithm::EdDSA);
    let mut set = KeySet::new(&policy, t0(), Some("a"), &mut keys::generate).expect("new");
    // The value the set was made with is no request.
    assert!(set.schedule.plan(&policy, at(1), Some("a")).is_empty());
    // A new value within the propagation time of the next key: it waits.
    let early = t0() + secs(30);
    let plan = set.schedule.plan(&policy, early, Some("b"));
    assert!(plan.rotation_waits && !plan.rotate, "{plan:?}");
    assert_eq!(plan.wake_at, Some(t0() + policy.propagation));
    // Later it rotates, once.
    let active = set.schedule.active.kid.clone();
    tick(&mut set, &policy, at(1), Some("b"));
    assert_eq!(set.schedule.retired[0].kid, active);
    assert_eq!(set.schedule.rotation_request.as_deref(), Some("b"));
    assert!(set.schedule.plan(&policy, at(2), Some("b")).is_empty());
    // The active key's new period starts at the rotation.
    assert_eq!(set.schedule.next_rotation(&policy), at(1 + 720));
}

#[test]
fn an_algorithm_change_replaces_the_next_key_now_and_signs_with_it_from_the_rotation() {
    let before = policy(JwtAlgorithm::EdDSA);
    let mut set = KeySet::new(&before, t0(), None, &mut keys::generate).expect("new");
    let after_change = policy(JwtAlgorithm::RS256);
    let changes = tick(&mut set, &after_change, at(100), None);
    assert!(
        changes[0].starts_with("replaced the next signing key"),
        "{changes:?}"
    );
    assert_eq!(set.schedule.active.alg, JwtAlgorithm::EdDSA);
    assert_eq!(set.schedule.next.alg, JwtAlgorithm::RS256);
    assert!(set.schedule.plan(&after_change, at(101), None).is_empty());
    tick(&mut set, &after_change, at(720), None);
    assert_eq!(set.schedule.active.alg, JwtAlgorithm::RS256);
    assert_eq!(set.schedule.retired[0].alg, JwtAlgorithm::EdDSA);
}

#[test]
fn a_rotation_due_with_a_freshly_replaced_next_key_waits_for_it_to_reach_the_pods() {
    let before = policy(JwtAlgorithm::EdDSA);
    let mut set = KeySet::new(&before, t0(), None, &mut keys::generate).expect("new");
    let es = policy(JwtAlgorithm::ES256);
    // The algorithm changes just as the period ends: the next key is
    // replaced now, and cannot sign before the pods know it.
    let plan = set.schedule.plan(&es, at(720), None);
    assert!(
        plan.replace_next && plan.rotation_waits && !plan.rotate,
        "{plan:?}"
    );
    tick(&mut set, &es, at(720), None);
    let plan = set.schedule.plan(&es, at(720) + secs(60), None);
    assert!(plan.rotation_waits, "{plan:?}");
    assert_eq!(plan.wake_at, Some(at(720) + es.propagation));
    assert!(
        set.schedule
            .plan(&es, at(720) + es.propagation, None)
            .rotate
    );
}

#[test]
fn an_operator_away_for_several_periods_rotates_once_and_keeps_what_may_verify() {
    let policy = policy(JwtAlgorithm::EdDSA);
    let mut set = KeySet::new(&policy, t0(), None, &mut keys::generate).expect("new");
    let token = sign(&set.secret_data());
    // Back after three periods: the old active key signed until now, so it
    // is retired now, not at the end of its period.
    tick(&mut set, &policy, at(3 * 720), None);
    assert_eq!(set.schedule.retired.len(), 1);
    assert_eq!(set.schedule.retired[0].retired, at(3 * 720));
    assert_eq!(verify(&token, &set.secret_data()).as_deref(), Ok("user-1"));
    assert_eq!(set.schedule.active.activated, at(3 * 720));
}
