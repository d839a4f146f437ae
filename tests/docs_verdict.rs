//! Every example of `docs/verdict.md`, run against verdicts made by the real
//! binary. The fenced blocks are read from the markdown at test time, so
//! the document and the test cannot drift apart:
//!
//! - ```` ```json header ```` and ```` ```json claims ````: must have exactly
//!   the members of a real verdict's header and claims (and the fixed values);
//! - ```` ```sh ````: a step a controller or technician runs (e.g. fetching
//!   the JWK); must succeed, in order, in the controller's directory;
//! - ```` ```sh verify ```` and ```` ```python verify ````: verification
//!   examples; each must accept a valid accept verdict carrying `$NONCE`
//!   and refuse a tampered one, an expired one, one with another nonce, a
//!   valid reject, and a verdict checked against another device's key.
//! - ```` ```python policy ````: a door's policy on the evidence claims; must
//!   accept a live camera verdict and refuse the photo-file accept and a
//!   camera verdict with liveness off (those two are signed here with a
//!   key of the test's own: no camera can run on this machine).
//!
//! Any other fenced block fails the test: every example in the document is
//! run. The claims and reason-code tables must also name every claim of a
//! real verdict and every reason code of `edgeid::verdict::Reason`.
//!
//! Shell examples run under `sh` (POSIX; dash on Debian) without `-e`, as a
//! controller's script would; Python examples under the PyJWT venv of
//! `scripts/test-python-setup`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{DEVICE, Device, claims, python_venv, repo, samples, stdout_json, tools};

const NONCE: &str = "c0ffee-42";

/// One fenced code block of the markdown.
#[derive(Debug)]
struct Block {
    /// First word of the info string (`sh`, `python`, `json`).
    lang: String,
    /// Second word, if any (`verify`, `header`, `claims`).
    tag: String,
    code: String,
    /// 1-based line of the opening fence.
    line: usize,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match open.as_mut() {
            None if fence => {
                let mut info = line.trim_start()[3..].split_whitespace();
                open = Some(Block {
                    lang: info.next().unwrap_or_default().to_owned(),
                    tag: info.next().unwrap_or_default().to_owned(),
                    code: String::new(),
                    line: i + 1,
                });
            }
            None => {}
            Some(_) if fence && line.trim() == "```" => out.extend(open.take()),
            Some(b) => {
                b.code.push_str(line);
                b.code.push('\n');
            }
        }
    }
    assert!(open.is_none(), "docs/verdict.md: an unclosed code block");
    out
}

/// The first column (`name`) of the table rows in the section headed
/// `heading` (up to the next heading of any level).
fn table_names(markdown: &str, heading: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .skip_while(|l| l.trim() != heading)
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// A JSON value's kind, for comparing an example with a real verdict.
fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn shape(v: &serde_json::Value) -> Vec<(String, &'static str)> {
    v.as_object()
        .expect("a JSON object")
        .iter()
        .map(|(k, v)| (k.clone(), kind(v)))
        .collect()
}

fn header(verdict: &str) -> serde_json::Value {
    use base64::Engine;
    let part = verdict.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url header");
    serde_json::from_slice(&bytes).expect("header JSON")
}

/// `edgeid verify --json …` on `device`: the verdict it printed (also on a
/// reject, which exits non-zero).
fn verdict(device: &Device, subject: &str, nonce: &str, photo: &Path) -> String {
    let out = device
        .command(&device.config)
        .args(["verify", "--json", "--subject", subject, "--nonce", nonce])
        .arg(photo)
        .output()
        .expect("run edgeid verify");
    stdout_json(&out)["issued"]["verdict"]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "no verdict in the output: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned()
}

/// The verdict with one character of its payload changed.
fn tampered(verdict: &str) -> String {
    let header_len = verdict.find('.').expect("dot");
    let payload_len = verdict[header_len + 1..].find('.').expect("dot");
    let i = header_len + 1 + payload_len / 2;
    let c = if &verdict[i..=i] == "A" { "B" } else { "A" };
    format!("{}{c}{}", &verdict[..i], &verdict[i + 1..])
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Where the examples run: a controller's directory, with `edgeid` on PATH
/// pointed at the device (for the steps that run on the device).
struct Controller {
    dir: PathBuf,
    python: PathBuf,
    /// The environment `Device::command` gives edgeid.
    env: Command,
}

impl Controller {
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        for (k, v) in self.env.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        let bin_dir = Path::new(support::BIN).parent().expect("bin dir");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![bin_dir.to_owned()];
        dirs.extend(std::env::split_paths(&path));
        c.env("PATH", std::env::join_paths(dirs).expect("PATH"))
            .current_dir(&self.dir);
        c
    }

    fn run(&self, block: &Block, nonce: &str) -> Output {
        let mut cmd = match block.lang.as_str() {
            "sh" => {
                let mut c = self.command(Path::new("sh"));
                c.arg("-c").arg(&block.code);
                c
            }
            "python" => {
                let script = self.dir.join("example.py");
                std::fs::write(&script, &block.code).expect("write example");
                let mut c = self.command(&self.python);
                c.arg(&script);
                c
            }
            other => panic!("no runner for {other}"),
        };
        cmd.env("NONCE", nonce)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the example at line {}: {e}", block.line))
    }

    fn put(&self, name: &str, contents: &str) {
        std::fs::write(self.dir.join(name), contents).expect("write");
    }
}

#[test]
fn every_example_in_docs_verdict_md_runs() {
    let samples = require!(samples());
    require!(tools(&["sh", "openssl", "base64", "awk", "sed", "tr"]));
    let python = require!(python_venv());
    let markdown =
        std::fs::read_to_string(repo().join("docs/verdict.md")).expect("docs/verdict.md");
    let blocks = blocks(&markdown);
    for b in &blocks {
        let known = matches!(
            (b.lang.as_str(), b.tag.as_str()),
            ("json", "header" | "claims") | ("sh", "" | "verify") | ("python", "verify" | "policy")
        );
        assert!(
            known,
            "docs/verdict.md line {}: a ```{} {} block this test does not run; every example \
             there must be run (tag it `sh`, `sh verify`, `python verify`, `python policy`, \
             `json header` or `json claims`, or add a runner here)",
            b.line, b.lang, b.tag
        );
    }
    let verify: Vec<&Block> = blocks.iter().filter(|b| b.tag == "verify").collect();
    assert!(
        verify.iter().any(|b| b.lang == "python") && verify.iter().any(|b| b.lang == "sh"),
        "docs/verdict.md must show verification in Python and in the shell"
    );

    // The verdicts: an accept that will have expired, a fresh accept, a
    // valid reject, all for NONCE, and another device's key.
    let device = Device::with_obama(&samples, &[]);
    let photo = samples.join("obama2.jpg");
    std::fs::write(
        &device.config,
        format!("device_id = \"{DEVICE}\"\nverdict_lifetime_secs = 1\n"),
    )
    .expect("config");
    let expired = verdict(&device, "obama", NONCE, &photo);
    let expired_at = Instant::now() + Duration::from_millis(2100);
    std::fs::write(
        &device.config,
        format!("device_id = \"{DEVICE}\"\nverdict_lifetime_secs = 600\n"),
    )
    .expect("config");
    let accept = verdict(&device, "obama", NONCE, &photo);
    let accepted = claims(&accept);
    assert_eq!(
        (&accepted["decision"], &accepted["reason"]),
        (&"accept".into(), &"match".into()),
        "{accepted}"
    );
    let reject = verdict(&device, "nobody-here", NONCE, &photo);
    assert_eq!(claims(&reject)["decision"], "reject");
    let other = Device::new("device_id = \"door-other\"\n");
    other.init();
    let other_jwk = other.cli(&other.config, &["keys", "show", "--jwk"]);

    // The header and claims examples: exactly a real verdict's members.
    for b in blocks.iter().filter(|b| b.lang == "json") {
        let example: serde_json::Value = serde_json::from_str(&b.code)
            .unwrap_or_else(|e| panic!("docs/verdict.md line {}: not JSON: {e}", b.line));
        let real = if b.tag == "header" {
            header(&accept)
        } else {
            accepted.clone()
        };
        assert_eq!(
            shape(&example),
            shape(&real),
            "docs/verdict.md line {}: the {} example's members differ from a real \
             verdict's: {real}",
            b.line,
            b.tag
        );
        let fixed: &[&str] = if b.tag == "header" {
            &["alg", "typ"]
        } else {
            &["decision", "mode", "reason", "modalities"]
        };
        for k in fixed {
            assert_eq!(example[k], real[k], "docs/verdict.md line {}: {k}", b.line);
        }
    }

    // The tables name every claim and every reason code.
    let claim_names: BTreeSet<String> = accepted
        .as_object()
        .expect("claims")
        .keys()
        .cloned()
        .collect();
    assert_eq!(table_names(&markdown, "## Claims"), claim_names);
    let reasons: BTreeSet<String> = edgeid::verdict::Reason::ALL
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    assert_eq!(table_names(&markdown, "### Reason codes"), reasons);

    // The controller's side: the setup steps, in order, then every
    // verification example against every case.
    let controller = Controller {
        dir: device.dir.join("controller"),
        python,
        env: device.command(&device.config),
    };
    std::fs::create_dir(&controller.dir).expect("controller dir");
    for b in blocks.iter().filter(|b| b.lang == "sh" && b.tag.is_empty()) {
        let out = controller.run(b, NONCE);
        assert!(
            out.status.success(),
            "docs/verdict.md line {}: the example failed:\n{}",
            b.line,
            text(&out)
        );
    }
    let jwk_path = controller.dir.join("device.jwk");
    let jwk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&jwk_path).expect("the examples write device.jwk"))
            .expect("device.jwk is JSON");
    assert_eq!(jwk["kid"], header(&accept)["kid"]);
    let members: BTreeSet<&str> = jwk
        .as_object()
        .expect("JWK")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members,
        BTreeSet::from(["kty", "crv", "x", "kid", "use", "alg"]),
        "docs/verdict.md lists the JWK's members"
    );
    let jwk = std::fs::read_to_string(&jwk_path).expect("jwk");

    if let Some(wait) = expired_at.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    let refused = [
        ("a tampered verdict", tampered(&accept), NONCE, &jwk),
        ("an expired verdict", expired.clone(), NONCE, &jwk),
        ("another nonce", accept.clone(), "c0ffee-43", &jwk),
        ("a valid reject", reject.clone(), NONCE, &jwk),
        ("another device's key", accept.clone(), NONCE, &other_jwk),
    ];
    for b in &verify {
        let what = format!("docs/verdict.md line {} (```{} verify)", b.line, b.lang);
        controller.put("device.jwk", &jwk);
        controller.put("verdict.jws", &format!("{accept}\n"));
        let out = controller.run(b, NONCE);
        assert!(
            out.status.success(),
            "{what} refused a valid accept verdict:\n{}",
            text(&out)
        );
        eprintln!("{what}: valid accept: ok");
        for (case, token, nonce, key) in &refused {
            controller.put("device.jwk", key);
            controller.put("verdict.jws", &format!("{token}\n"));
            let out = controller.run(b, nonce);
            assert!(
                !out.status.success(),
                "{what} accepted {case}:\n{}",
                text(&out)
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
            eprintln!("{what}: {case}: refused ({})", why.trim());
        }
    }

    // The door's policy on the evidence claims.
    let policies: Vec<&Block> = blocks.iter().filter(|b| b.tag == "policy").collect();
    assert!(
        !policies.is_empty(),
        "docs/verdict.md must show a door's policy"
    );
    let (camera_jwk, live) = signed_as(&accepted, "camera", "motion");
    let (_, unlive) = signed_as(&accepted, "camera", "off");
    for b in &policies {
        let what = format!("docs/verdict.md line {} (```python policy)", b.line);
        let cases = [
            ("a live camera accept", &camera_jwk, &live, true),
            (
                "a camera accept with liveness off",
                &camera_jwk,
                &unlive,
                false,
            ),
            ("the photo-file accept", &jwk, &accept, false),
        ];
        for (case, key, token, opens) in cases {
            controller.put("device.jwk", key);
            controller.put("verdict.jws", &format!("{token}\n"));
            let out = controller.run(b, NONCE);
            assert_eq!(
                out.status.success(),
                opens,
                "{what}: {case}:\n{}",
                text(&out)
            );
            eprintln!(
                "{what}: {case}: {}",
                if opens { "opens" } else { "refused" }
            );
        }
    }
}

/// `claims` with other evidence claims, signed by a fresh key of the
/// test's own; with that key's JWK.
fn signed_as(claims: &serde_json::Value, src: &str, liveness: &str) -> (String, String) {
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key pair");
    let jwk = edgeid::verdict::Jwk::from_public_key(pair.public_key().as_ref());
    let mut claims = claims.clone();
    claims["src"] = src.into();
    claims["liveness"] = liveness.into();
    let claims: edgeid::verdict::Claims = serde_json::from_value(claims).expect("claims");
    let kid = jwk.kid.clone().expect("kid");
    let token = edgeid::verdict::jws::sign(&claims, &pair, &kid).expect("sign");
    (serde_json::to_string(&jwk).expect("jwk"), token)
}
