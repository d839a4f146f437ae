//! MQTT over TLS with client certificates, against a real Mosquitto whose
//! listener requires them: a daemon given the site CA, its certificate and
//! key answers a request published over TLS with a verifiable verdict; a
//! daemon that trusts another CA, or presents no certificate, is refused by
//! the handshake, says so in its log, and keeps running (verdicts wait in
//! the queue, not in the clear on some other broker).
//!
//! Certificates are made per test with the `openssl` command (EC P-256,
//! PKCS#8 keys, the broker's certificate valid for IP 127.0.0.1).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::process::{run_ok, spawn_lines};
use support::{DEVICE, Daemon, Device, Mosquitto, claims, samples, tools};

/// A CA and certificates it signed, as PEM files in one directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn openssl(&self, args: &[&str]) {
        run_ok(Command::new("openssl").args(args).current_dir(&self.dir));
    }

    /// `name-ca.pem` / `name-ca.key`: a self-signed CA.
    fn new(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let pki = Pki {
            dir: dir.to_owned(),
        };
        let key = format!("{name}-ca.key");
        pki.genkey(&key);
        pki.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &key,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-out",
            &format!("{name}-ca.pem"),
        ]);
        pki
    }

    fn genkey(&self, out: &str) {
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            out,
        ]);
    }

    /// `leaf.pem` / `leaf.key` signed by `ca`'s CA, with `san` as subjectAltName.
    fn issue(&self, ca: &str, leaf: &str, san: &str, usage: &str) {
        let key = format!("{leaf}.key");
        self.genkey(&key);
        let ext = format!("{leaf}.ext");
        std::fs::write(
            self.file(&ext),
            format!("subjectAltName={san}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n"),
        )
        .expect("ext file");
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/CN={leaf}"),
            "-out",
            &format!("{leaf}.csr"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{leaf}.csr"),
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &format!("{leaf}.pem"),
        ]);
    }
}

/// Mosquitto with one TLS listener that requires a client certificate
/// signed by the site CA.
fn tls_broker(dir: &Path, pki: &Pki) -> Mosquitto {
    Mosquitto::with_options(
        dir,
        &format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            pki.file("site-ca.pem").display(),
            pki.file("broker.pem").display(),
            pki.file("broker.key").display(),
        ),
    )
}

/// Arguments for mosquitto_pub / mosquitto_sub as the `tool` certificate.
fn client_args(broker: &Mosquitto, pki: &Pki) -> Vec<String> {
    [
        "-h",
        "127.0.0.1",
        "-p",
        &broker.port.to_string(),
        "--cafile",
        pki.file("site-ca.pem").to_str().expect("utf8"),
        "--cert",
        pki.file("tool.pem").to_str().expect("utf8"),
        "--key",
        pki.file("tool.key").to_str().expect("utf8"),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The camera plays a still photo, which cannot show a live head: liveness
/// is off because this test is about the transport (tests/liveness_daemon.rs
/// covers liveness).
fn config(f: &Device, name: &str, port: u16, tls: &str) -> PathBuf {
    f.write_config(
        name,
        &format!(
            "device_id = \"{DEVICE}\"\n\
             [camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 10.0\n\
             [mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}\nreconnect_max_ms = 500\n\
             [mqtt.tls]\n{tls}\n\
             [liveness]\nmode = \"off\"\n",
            f.camera.display()
        ),
    )
}

#[test]
fn verdicts_flow_over_tls_with_client_certificates_and_bad_trust_is_refused() {
    let samples = require!(samples());
    require!(tools(&[
        "mosquitto",
        "mosquitto_pub",
        "mosquitto_sub",
        "openssl"
    ]));
    let f = Device::with_obama(&samples, &["obama2.jpg"]);
    let pki = Pki::new(&f.dir.join("pki"), "site");
    pki.issue("site", "broker", "IP:127.0.0.1,DNS:localhost", "serverAuth");
    pki.issue("site", "door", "DNS:door-test", "clientAuth");
    pki.issue("site", "tool", "DNS:tool", "clientAuth");
    // Another CA: its certificates mean nothing to the site broker.
    let _rogue = Pki::new(&f.dir.join("pki"), "rogue");
    let broker = tls_broker(&f.dir.join("broker-tls"), &pki);

    let mut sub = Command::new("mosquitto_sub");
    sub.args(client_args(&broker, &pki))
        .args(["-V", "mqttv5", "-q", "1", "-i", "tls-verdicts"])
        .args(["-t", &format!("edgeid/{DEVICE}/verdict"), "-F", "%p"]);
    let (_sub, verdicts) = spawn_lines(sub, "mosquitto_sub");

    // The good daemon: site CA, its own certificate and key.
    let good = config(
        &f,
        "tls-good",
        broker.port,
        &format!(
            "ca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            pki.file("site-ca.pem").display(),
            pki.file("door.pem").display(),
            pki.file("door.key").display()
        ),
    );
    let daemon = Daemon::start(&f, &good, &[]);
    assert!(
        daemon.log_shows("MQTT: connected", Duration::from_secs(20)),
        "the daemon did not connect over TLS; log:\n{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    let ok = Command::new("mosquitto_pub")
        .args(client_args(&broker, &pki))
        .args(["-q", "1", "-t", &format!("edgeid/{DEVICE}/request")])
        .args([
            "-m",
            r#"{"mode":"verify","subject":"obama","nonce":"tls-1"}"#,
        ])
        .status()
        .expect("mosquitto_pub");
    assert!(ok.success(), "mosquitto_pub over TLS failed");
    let until = Instant::now() + Duration::from_secs(30);
    let verdict = loop {
        assert!(
            Instant::now() < until,
            "no verdict over TLS; log:\n{}",
            daemon.log_text()
        );
        if let Ok(line) = verdicts.recv_timeout(Duration::from_millis(200))
            && claims(&line)["nonce"] == "tls-1"
        {
            break line;
        }
    };
    let c = claims(&verdict);
    assert_eq!(c["decision"], "accept", "{c}");
    assert!(f.verdict_verifies(&good, &verdict, Some("tls-1")));
    daemon.stop();

    // Trusting the wrong CA: the broker's certificate is refused.
    let wrong_ca = config(
        &f,
        "tls-wrong-ca",
        broker.port,
        &format!(
            "ca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            pki.file("rogue-ca.pem").display(),
            pki.file("door.pem").display(),
            pki.file("door.key").display()
        ),
    );
    // No client certificate: the broker refuses the handshake.
    let no_cert = config(
        &f,
        "tls-no-cert",
        broker.port,
        &format!("ca_file = \"{}\"\n", pki.file("site-ca.pem").display()),
    );
    for (name, cfg) in [("wrong CA", &wrong_ca), ("no client certificate", &no_cert)] {
        let daemon = Daemon::start(&f, cfg, &[]);
        assert!(
            daemon.log_shows("MQTT: cannot connect", Duration::from_secs(20)),
            "{name}: nothing logged about MQTT; log:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_secs(2));
        let log = daemon.log_text();
        assert!(
            !log.contains("MQTT: connected"),
            "{name}: the daemon connected anyway; log:\n{log}"
        );
        assert!(
            log.contains("MQTT: cannot connect"),
            "{name}: the log does not say it cannot connect:\n{log}"
        );
        // It kept running, and stops cleanly.
        daemon.stop();
    }
}
