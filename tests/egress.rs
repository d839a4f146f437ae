//! Egress: the daemon runs in a network namespace of its own (`unshare -n`:
//! loopback only) beside a broker on 127.0.0.1, answers an MQTT request,
//! and every socket it holds over the run is looked at through /proc: its
//! only network peer is the broker. No socket to anywhere else, no UDP
//! (no DNS, no telemetry), no raw socket. Nothing biometric can leave
//! through a connection that is never made. The sockets are sampled every
//! 100 ms, so one opened and closed between two samples could be missed;
//! the namespace itself reaches nothing but loopback either way.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::process::{Guard, spawn_lines};
use support::{DEVICE, Device, free_port, samples, tools};

/// One socket of the daemon, as /proc/PID/net describes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    proto: &'static str,
    local: String,
    remote: String,
}

/// `0100007F:1F90` (little-endian IPv4 hex) → `127.0.0.1:8080`.
fn endpoint(hex: &str) -> String {
    let Some((addr, port)) = hex.split_once(':') else {
        return hex.to_owned();
    };
    let port = u16::from_str_radix(port, 16).unwrap_or(0);
    if addr.len() == 8 {
        let n = u32::from_str_radix(addr, 16).unwrap_or(0).to_le_bytes();
        format!("{}.{}.{}.{}:{port}", n[0], n[1], n[2], n[3])
    } else {
        format!("[{addr}]:{port}")
    }
}

/// The inet sockets among `pid`'s open files right now.
fn sockets_of(pid: u32) -> Vec<Seen> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    l.strip_prefix("socket:[")
                        .and_then(|s| s.strip_suffix(']'))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for proto in ["tcp", "tcp6", "udp", "udp6", "raw", "raw6"] {
        let Ok(table) = std::fs::read_to_string(format!("/proc/{pid}/net/{proto}")) else {
            continue;
        };
        for line in table.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && inodes.contains(f[9]) {
                out.push(Seen {
                    proto,
                    local: endpoint(f[1]),
                    remote: endpoint(f[2]),
                });
            }
        }
    }
    out
}

#[test]
fn the_daemon_talks_only_to_its_broker() {
    let samples = require!(samples());
    require!(tools(&[
        "unshare",
        "nsenter",
        "ip",
        "mosquitto",
        "mosquitto_pub",
        "mosquitto_sub"
    ]));
    let f = Device::with_obama(&samples, &["obama2.jpg"]);
    let port = free_port();
    let broker_dir = f.dir.join("broker");
    std::fs::create_dir_all(&broker_dir).expect("broker dir");
    let broker_conf = broker_dir.join("mosquitto.conf");
    std::fs::write(
        &broker_conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npid_file {}\n",
            broker_dir.join("pid").display()
        ),
    )
    .expect("broker config");
    let config = f.write_config(
        "egress",
        &format!(
            "device_id = \"{DEVICE}\"\n[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 5.0\n\
             [liveness]\nmode = \"off\"\n[mqtt]\nenabled = true\nport = {port}\n",
            f.camera.display()
        ),
    );

    // The namespace: loopback only, the broker daemonised inside it, then
    // edgeid in place of the shell (so the child's pid is the daemon's).
    let inner = f.command(&config);
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--", "sh", "-c"])
        .arg(format!(
            "ip link set lo up && mosquitto -d -c '{}' && sleep 0.3 && exec '{}' run",
            broker_conf.display(),
            inner.get_program().to_string_lossy()
        ))
        .env("EDGEID_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(f.dir.join("daemon.log")).expect("log"));
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let child = cmd.spawn().expect("unshare");
    let pid = child.id();
    let mut daemon = Guard::new(child, "edgeid in its namespace");
    let in_ns = |program: &str| {
        let mut c = Command::new("nsenter");
        c.args(["-t", &pid.to_string(), "-n", program]);
        c
    };
    // The broker is up inside once a message can be published there.
    let broker_up = support::wait_until(Duration::from_secs(20), || {
        in_ns("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "probe",
                "-m",
                "x",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(broker_up, "the broker did not start in the namespace");
    let mut sub = in_ns("mosquitto_sub");
    sub.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv5"])
        .args(["-t", &format!("edgeid/{DEVICE}/verdict"), "-F", "%p"]);
    let (_sub_guard, verdicts) = spawn_lines(sub, "mosquitto_sub");

    let mut seen = BTreeSet::new();
    let started = Instant::now();
    let mut asked = false;
    let mut answered = false;
    while started.elapsed() < Duration::from_secs(60) && !answered {
        seen.extend(sockets_of(pid));
        if !asked && started.elapsed() > Duration::from_secs(3) {
            let ok = in_ns("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
                .args(["-t", &format!("edgeid/{DEVICE}/request")])
                .args([
                    "-m",
                    r#"{"mode":"verify","subject":"obama","nonce":"egress-1"}"#,
                ])
                .status()
                .is_ok_and(|s| s.success());
            asked = ok;
        }
        if let Ok(line) = verdicts.recv_timeout(Duration::from_millis(100)) {
            answered = line.starts_with("eyJ");
        }
    }
    // A little longer: the socket table after the answer too.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        seen.extend(sockets_of(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.signal(libc::SIGTERM);
    daemon.wait_exit(Duration::from_secs(20));
    if let Ok(broker_pid) = std::fs::read_to_string(broker_dir.join("pid")) {
        let _ = Command::new("kill").arg(broker_pid.trim()).status();
    }
    let log = std::fs::read_to_string(f.dir.join("daemon.log")).unwrap_or_default();
    assert!(answered, "no verdict came back over MQTT; log:\n{log}");

    let broker = format!("127.0.0.1:{port}");
    eprintln!("sockets the daemon held: {seen:#?}");
    assert!(
        seen.iter().any(|s| s.proto == "tcp" && s.remote == broker),
        "the connection to the broker was never seen: {seen:?}"
    );
    let elsewhere: Vec<&Seen> = seen
        .iter()
        .filter(|s| !(s.proto == "tcp" && s.remote == broker))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "sockets other than the one to the broker: {elsewhere:?}"
    );
}
