//! The JWT verifier against tokens of a test identity provider: what it
//! accepts, what it refuses and why, and the gate's answer to each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use plaint_access::gate::SharedRing;
use plaint_access::jwks::KeyMiss;
use plaint_access::jwt::{JwtRefusal, JwtVerifier};
use plaint_access::{AccessGate, JwtAlgorithm, JwtSettings};
use plaint_domain::access::Scope;
use plaint_runtime::gate::{Gate, Refusal};
use plaint_testkit::jwt::{Issuer, hs256, now};

fn verifier(settings: &JwtSettings) -> JwtVerifier {
    JwtVerifier::from_settings(settings)
        .expect("the settings are valid")
        .expect("a JWKS file is set")
}

fn refusal(verifier: &JwtVerifier, token: &str) -> JwtRefusal {
    verifier.verify(token).expect_err("refused")
}

#[test]
fn a_right_token_is_its_subject_with_the_plaint_scopes_it_names() {
    let issuer = Issuer::es256();
    let v = verifier(&issuer.settings());
    let (caller, scopes) = v
        .verify(&issuer.token("billing", &["openid", "complaints:read", "audit:read"]))
        .unwrap();
    assert_eq!(caller.id(), "jwt:billing");
    assert_eq!(
        scopes,
        [Scope::ComplaintsRead, Scope::AuditRead]
            .into_iter()
            .collect()
    );

    let mut claims = issuer.claims("billing", &[]);
    claims.scope = serde_json::json!(["complaints:write", "profile"]);
    let (_, scopes) = v.verify(&issuer.mint(&claims)).unwrap();
    assert_eq!(scopes, [Scope::ComplaintsWrite].into_iter().collect());
}

#[test]
fn the_scopes_come_from_the_configured_claim_only() {
    let issuer = Issuer::es256();
    let v = verifier(&JwtSettings {
        scopes_claim: "scp".into(),
        ..issuer.settings()
    });
    let (_, scopes) = v.verify(&issuer.token("svc", &["keys:admin"])).unwrap();
    assert!(scopes.is_empty(), "{scopes:?}");
}

#[test]
fn another_audience_or_issuer_is_refused() {
    let issuer = Issuer::es256();
    let v = verifier(&issuer.settings());
    let mut claims = issuer.claims("svc", &["complaints:read"]);
    claims.aud = "another-service".into();
    assert_eq!(
        refusal(&v, &issuer.mint(&claims)),
        JwtRefusal::WrongAudience
    );

    let mut claims = issuer.claims("svc", &["complaints:read"]);
    claims.iss = "https://elsewhere.test".into();
    assert_eq!(refusal(&v, &issuer.mint(&claims)), JwtRefusal::WrongIssuer);
}

#[test]
fn a_token_expired_beyond_the_leeway_is_refused() {
    let issuer = Issuer::es256();
    let v = verifier(&JwtSettings {
        leeway_secs: 30,
        ..issuer.settings()
    });
    let mut claims = issuer.claims("svc", &[]);
    claims.exp = now() - 10;
    assert!(v.verify(&issuer.mint(&claims)).is_ok(), "within the leeway");
    claims.exp = now() - 120;
    assert_eq!(refusal(&v, &issuer.mint(&claims)), JwtRefusal::Expired);
}

#[test]
fn a_token_signed_with_another_algorithm_is_refused() {
    let issuer = Issuer::es256();
    let v = verifier(&issuer.settings());
    let claims = issuer.claims("svc", &["keys:admin"]);

    // ES384, naming the ES256 key.
    let other = Issuer::es384();
    let token = other.mint_with_kid(Some(issuer.kid()), &claims);
    assert_eq!(refusal(&v, &token), JwtRefusal::WrongAlgorithm);

    // HS256 keyed by the public key, as published: the classic confusion.
    let public = std::fs::read(issuer.jwks_file()).unwrap();
    for kid in [Some(issuer.kid()), None] {
        assert_eq!(
            refusal(&v, &hs256(&claims, kid, &public)),
            JwtRefusal::WrongAlgorithm
        );
    }
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let issuer = Issuer::es256();
    let v = verifier(&issuer.settings());
    let impostor = Issuer::es256();
    let token = impostor.mint_with_kid(Some(issuer.kid()), &issuer.claims("svc", &[]));
    assert_eq!(refusal(&v, &token), JwtRefusal::BadSignature);
}

#[test]
fn an_unknown_kid_is_refused_and_no_kid_means_the_only_key() {
    let issuer = Issuer::es256();
    let v = verifier(&issuer.settings());
    let claims = issuer.claims("svc", &["complaints:read"]);
    assert_eq!(
        refusal(&v, &issuer.mint_with_kid(Some("rotated-away"), &claims)),
        JwtRefusal::Key(KeyMiss::UnknownKid)
    );
    assert!(v.verify(&issuer.mint_with_kid(None, &claims)).is_ok());
}

#[test]
fn garbage_is_malformed() {
    let issuer = Issuer::es256();
    let v = verifier(&issuer.settings());
    for token in ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        assert_eq!(refusal(&v, token), JwtRefusal::Malformed, "{token}");
    }
}

#[test]
fn start_up_names_a_missing_issuer_or_audience_and_needs_a_usable_key() {
    let issuer = Issuer::es256();
    let without_issuer = JwtSettings {
        issuer: None,
        ..issuer.settings()
    };
    let e = JwtVerifier::from_settings(&without_issuer).unwrap_err();
    assert!(format!("{e:#}").contains("PLAINT_JWT_ISSUER"), "{e:#}");
    let without_audience = JwtSettings {
        audience: Some(" ".into()),
        ..issuer.settings()
    };
    let e = JwtVerifier::from_settings(&without_audience).unwrap_err();
    assert!(format!("{e:#}").contains("PLAINT_JWT_AUDIENCE"), "{e:#}");

    let rs256 = JwtSettings {
        algorithm: JwtAlgorithm::RS256,
        ..issuer.settings()
    };
    let e = JwtVerifier::from_settings(&rs256).unwrap_err();
    assert!(
        format!("{e:#}").contains("no signature key usable"),
        "{e:#}"
    );

    assert!(
        JwtVerifier::from_settings(&JwtSettings::default())
            .unwrap()
            .is_none()
    );
}

#[test]
fn an_rs256_token_checks_against_its_jwks() {
    // A key pair made once with openssl; only its public half and one token
    // (expiring in 2100) are kept.
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let v = verifier(&JwtSettings {
        jwks_file: Some(fixtures.join("rs256.jwks.json")),
        issuer: Some("https://idp.fixture".into()),
        audience: Some("plaint".into()),
        ..JwtSettings::default()
    });
    let token = std::fs::read_to_string(fixtures.join("rs256.jwt")).unwrap();
    let (caller, scopes) = v.verify(token.trim()).unwrap();
    assert_eq!(caller.id(), "jwt:svc-fixture");
    assert_eq!(scopes, [Scope::ComplaintsRead].into_iter().collect());

    let mut tampered = token.trim().to_owned();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    assert_eq!(refusal(&v, &tampered), JwtRefusal::BadSignature);
}

#[test]
fn the_gate_admits_a_jwt_with_the_scope_and_denies_one_without() {
    let issuer = Issuer::es256();
    let gate = AccessGate::new(
        SharedRing::default(),
        None,
        false,
        Some(verifier(&issuer.settings())),
    );
    let stats = "/plaint.router.v1.Query/GetQueueStats";
    let reader = issuer.token("reader", &["complaints:read"]);
    assert_eq!(gate.admit(stats, Some(&reader)).unwrap().id(), "jwt:reader");
    let writer = issuer.token("writer", &["complaints:write"]);
    assert!(matches!(
        gate.admit(stats, Some(&writer)),
        Err(Refusal::PermissionDenied(_))
    ));
    let mut claims = issuer.claims("late", &["complaints:read"]);
    claims.exp = now() - 3600;
    assert!(matches!(
        gate.admit(stats, Some(&issuer.mint(&claims))),
        Err(Refusal::Unauthenticated(why)) if why.contains("expired")
    ));
    // A token of the API key's form takes the key path, JWTs configured or not.
    let key = plaint_access::api_key::NewKey::generate().unwrap().text;
    assert!(matches!(
        gate.admit(stats, Some(&key)),
        Err(Refusal::Unauthenticated(why)) if why.contains("API key")
    ));
}

#[test]
fn a_rotated_key_file_is_picked_up_and_a_broken_one_ignored() {
    let issuer = Issuer::es256();
    let v = verifier(&issuer.settings());
    let next = Issuer::es256();
    let rotated = next.mint(&issuer.claims("svc", &[]));
    assert_eq!(refusal(&v, &rotated), JwtRefusal::Key(KeyMiss::UnknownKid));
    assert!(!v.key_file().refresh(), "unchanged");

    std::fs::write(issuer.jwks_file(), "{not json").unwrap();
    assert!(!v.key_file().refresh());
    assert!(
        v.verify(&issuer.token("svc", &[])).is_ok(),
        "the keys in force stay"
    );

    std::fs::copy(next.jwks_file(), issuer.jwks_file()).unwrap();
    assert!(v.key_file().refresh());
    assert!(v.verify(&rotated).is_ok());
    assert_eq!(
        refusal(&v, &issuer.token("svc", &[])),
        JwtRefusal::Key(KeyMiss::UnknownKid)
    );
}
