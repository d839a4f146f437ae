//! Verdicts: exactly the header and claims of docs/verdict.md, and each verification
//! failure reported as its own error.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use edgeid::decision::{Decision, Mode, Reason};
use edgeid::verdict::claims::{Capture, LivenessCheck};
use edgeid::verdict::jwk::thumbprint;
use edgeid::verdict::{Claims, Jwk, VerdictError, jws};

fn key() -> (Ed25519KeyPair, [u8; 32], String) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("pkcs8");
    let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
    let pk: [u8; 32] = kp.public_key().as_ref().try_into().expect("32");
    let kid = thumbprint(&pk);
    (kp, pk, kid)
}

fn claims(now: i64, nonce: Option<&str>) -> Claims {
    Claims {
        iss: "dev-1".into(),
        iat: now,
        exp: now + 30,
        jti: "j1".into(),
        seq: 7,
        nonce: nonce.map(str::to_owned),
        decision: Decision::Accept,
        sub: Some("alice".into()),
        mode: Mode::Verify,
        reason: Reason::Match,
        modalities: vec!["face".into()],
        src: Capture::Camera,
        liveness: LivenessCheck::Motion,
        amr: vec!["face".into()],
    }
}

fn part(token: &str, i: usize) -> serde_json::Value {
    let p = token.split('.').nth(i).expect("part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("b64")).expect("json")
}

#[test]
fn header_and_claims_are_exactly_the_designed_ones() {
    let (kp, _, kid) = key();
    let token = jws::sign(&claims(1000, Some("n")), &kp, &kid).expect("sign");
    let header = part(&token, 0);
    assert_eq!(
        header,
        serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": "edgeid-verdict+jwt"})
    );
    let body = part(&token, 1);
    let mut keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "amr",
            "decision",
            "exp",
            "iat",
            "iss",
            "jti",
            "liveness",
            "modalities",
            "mode",
            "nonce",
            "reason",
            "seq",
            "src",
            "sub"
        ]
    );
    assert_eq!(body["decision"], "accept");
    assert_eq!(body["reason"], "match");
    let mut c = claims(1000, None);
    c.sub = None;
    let body = part(&jws::sign(&c, &kp, &kid).expect("sign"), 1);
    assert!(
        body.get("nonce").is_none() && body.get("sub").is_none(),
        "absent optional claims are omitted"
    );
}

#[test]
fn a_good_verdict_verifies() {
    let (kp, pk, kid) = key();
    let token = jws::sign(&claims(1000, Some("n1")), &kp, &kid).expect("sign");
    let v = jws::verify(&token, &pk, &kid, Some("n1"), 1010).expect("valid");
    assert_eq!(v.claims.seq, 7);
    assert!(jws::verify(&token, &pk, &kid, None, 1010).is_ok());
}

#[test]
fn each_failure_has_its_own_error() {
    let (kp, pk, kid) = key();
    let token = jws::sign(&claims(1000, Some("n1")), &kp, &kid).expect("sign");
    // Any changed byte in the signed part or the signature fails.
    let bytes = token.as_bytes();
    for i in (0..bytes.len()).step_by(7) {
        if bytes[i] == b'.' {
            continue;
        }
        let mut bad = bytes.to_vec();
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).expect("ascii");
        let err =
            jws::verify(&bad, &pk, &kid, Some("n1"), 1010).expect_err("tampered verdict accepted");
        assert!(
            matches!(
                err,
                VerdictError::BadSignature
                    | VerdictError::Malformed(_)
                    | VerdictError::UnsupportedHeader { .. }
                    | VerdictError::WrongKid { .. }
            ),
            "byte {i}: {err:?}"
        );
    }
    assert_eq!(
        jws::verify(&token, &pk, &kid, Some("n1"), 1030),
        Err(VerdictError::Expired {
            exp: 1030,
            now: 1030
        })
    );
    assert!(matches!(
        jws::verify(&token, &pk, &kid, Some("other"), 1010),
        Err(VerdictError::NonceMismatch { .. })
    ));
    let (_, other_pk, other_kid) = key();
    assert!(matches!(
        jws::verify(&token, &pk, &other_kid, None, 1010),
        Err(VerdictError::WrongKid { .. })
    ));
    assert_eq!(
        jws::verify(&token, &other_pk, &kid, None, 1010),
        Err(VerdictError::BadSignature)
    );
    assert!(matches!(
        jws::verify("a.b", &pk, &kid, None, 1010),
        Err(VerdictError::Malformed(_))
    ));
    let no_nonce = jws::sign(&claims(1000, None), &kp, &kid).expect("sign");
    assert!(matches!(
        jws::verify(&no_nonce, &pk, &kid, Some("n1"), 1010),
        Err(VerdictError::NonceMismatch { got: None, .. })
    ));
}

#[test]
fn alg_none_and_other_types_are_refused() {
    let (kp, pk, kid) = key();
    let token = jws::sign(&claims(1000, None), &kp, &kid).expect("sign");
    let rest = token.split_once('.').expect("dot").1;
    let none = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"alg":"none","kid":"{kid}","typ":"edgeid-verdict+jwt"}}"#
    ));
    assert!(matches!(
        jws::verify(&format!("{none}.{rest}"), &pk, &kid, None, 1010),
        Err(VerdictError::UnsupportedHeader { .. })
    ));
}

#[test]
fn the_jwk_carries_its_thumbprint() {
    let (_, pk, kid) = key();
    let jwk = Jwk::from_public_key(&pk);
    let json = serde_json::to_value(&jwk).expect("json");
    assert_eq!(json["kty"], "OKP");
    assert_eq!(json["crv"], "Ed25519");
    assert_eq!(json["kid"], kid.as_str());
    assert_eq!(jwk.public_key().expect("pk"), pk);
}
