//! Fuzzing that stays: property tests (proptest, stable Rust) that feed
//! each parser of untrusted input random and mutated data and require an
//! answer, never a panic: image decoding, Y4M streams, the MQTT request,
//! the config file, the verdict verifier and the signed audit export.
//!
//! The suite runs each property for proptest's default 256 cases;
//! `scripts/fuzz` runs them for many more (and times them). A failing case
//! is shrunk and saved under `proptest-regressions/`: commit that file and
//! it is replayed first on every run, a regression test of its own.

use std::io::Cursor;

use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use edgeid::config::Config;
use edgeid::sinks::mqtt::request::parse;
use edgeid::sources::FrameSource;
use edgeid::sources::decode_image;
use edgeid::sources::y4m::Y4mSource;
use edgeid::store::audit::{EXPORT_TYP, verify_export};
use edgeid::verdict::jwk::thumbprint;
use edgeid::verdict::jws;

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 77]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, 9, y as u8]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg");
    out.into_inner()
}

/// `base` with bytes overwritten at random places and cut at a random length.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (
        proptest::collection::vec((0..len, any::<u8>()), 0..16),
        0..=len,
    )
        .prop_map(move |(edits, cut)| {
            let mut b = base.clone();
            for (i, v) in edits {
                b[i] = v;
            }
            b.truncate(cut.max(1));
            b
        })
}

fn key() -> (Ed25519KeyPair, [u8; 32], String) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("pkcs8");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
    let public: [u8; 32] = pair.public_key().as_ref().try_into().expect("32 bytes");
    let kid = thumbprint(&public);
    (pair, public, kid)
}

/// JSON values of every kind, nested a little.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("records".to_owned()),
                    Just("head".to_owned()),
                    Just("device_id".to_owned()),
                    Just("id".to_owned()),
                    Just("hash".to_owned()),
                    ".{0,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn images_never_panic_the_decoder(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        mutated(png(48, 40)),
        mutated(jpeg(48, 40)),
    ]) {
        let _ = decode_image(&bytes, "fuzz");
    }

    #[test]
    fn y4m_streams_never_panic_the_source(
        w in 0u32..100_000,
        h in 0u32..100_000,
        tail in proptest::collection::vec(any::<u8>(), 0..4096),
        chroma in prop_oneof![Just("C420"), Just("C444"), Just("C422"), Just("Cmono"), Just("Cxyz"), Just("")],
    ) {
        let mut bytes = format!("YUV4MPEG2 W{w} H{h} {chroma}\n").into_bytes();
        bytes.extend_from_slice(&tail);
        if let Ok(mut source) = Y4mSource::from_reader(Box::new(Cursor::new(bytes)), "fuzz".into()) {
            for _ in 0..4 {
                if source.next_frame().is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn mqtt_requests_never_panic_and_ok_means_valid(payload in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..1100),
        json().prop_map(|v| v.to_string().into_bytes()),
        (prop_oneof![Just("verify"), Just("identify"), Just("x")], ".{0,200}", ".{0,200}", any::<u32>())
            .prop_map(|(m, s, n, t)| serde_json::json!({"mode": m, "subject": s, "nonce": n, "timeout_ms": t})
                .to_string().into_bytes()),
    ]) {
        if let Ok(req) = parse(&payload, 1024) {
            prop_assert!(!req.nonce.is_empty() && req.nonce.len() <= 128);
            prop_assert!(req.nonce.bytes().all(|b| b.is_ascii_graphic()));
        }
    }

    #[test]
    fn configs_never_panic_the_loader(lines in proptest::collection::vec((
        prop_oneof![
            Just("verdict_lifetime_secs"), Just("device_id"), Just("[camera]\nfps"),
            Just("[camera]\nwidth"), Just("[daemon]\nmax_pending_requests"),
            Just("[daemon]\nthreshold"), Just("[daemon]\nmax_timeout_ms"),
            Just("[lockout]\nwindow_secs"), Just("[lockout]\nbackoff_max_secs"),
            Just("[mqtt]\ntopic_prefix"), Just("[mqtt]\nrequests_per_minute"),
            Just("[dbus]\nrequests_per_minute"), Just("[liveness]\nmode"),
        ],
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            Just("nan".to_owned()), Just("inf".to_owned()), Just("-inf".to_owned()),
            Just("1e-300".to_owned()), Just("9223372036854775807".to_owned()),
            ".{0,20}".prop_map(|s| format!("{s:?}")),
        ],
    ), 0..6)) {
        let text: String = lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        if let Ok(config) = toml::from_str::<Config>(&text) {
            let _ = config.validate();
        }
    }

    #[test]
    fn verdict_tokens_never_panic_the_verifier(
        parts in proptest::collection::vec("[A-Za-z0-9_=.-]{0,120}", 0..5),
        claims in json(),
    ) {
        let (pair, public, kid) = key();
        let random = parts.join(".");
        let _ = jws::verify(&random, &public, &kid, Some("n"), 1_000);
        // Validly signed, but whatever claims: still an answer.
        if let Ok(token) = jws::sign_as("edgeid-verdict+jwt", &claims, &pair, &kid) {
            let _ = jws::verify(&token, &public, &kid, None, 1_000);
        }
    }

    #[test]
    fn audit_exports_never_panic_the_checker(document in json(), junk in ".{0,300}") {
        let (pair, public, kid) = key();
        let _ = verify_export(&junk, &public, &kid);
        if let Ok(token) = jws::sign_as(EXPORT_TYP, &document, &pair, &kid) {
            let _ = verify_export(&token, &public, &kid);
        }
    }
}
