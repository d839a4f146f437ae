//! `scripts/gpu-check` on a machine without an NVIDIA GPU, TensorRT or a
//! GPU-enabled libonnxruntime (this one): it must say which of them is
//! missing and stop at once, not hang or run the steps.

use std::process::Command;
use std::time::{Duration, Instant};

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn gpu_check_names_what_is_missing_and_runs_nothing() {
    if std::path::Path::new("/dev/nvhost-ctrl").exists()
        || Command::new("nvidia-smi")
            .arg("-L")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        // What this test checks (failing clearly without one) cannot happen here.
        eprintln!("\n*** an NVIDIA GPU is present: run scripts/gpu-check itself ***\n");
        return;
    }
    let cpu_library = repo().join(".cache/onnxruntime");
    let started = Instant::now();
    let out = Command::new(repo().join("scripts/gpu-check"))
        .env("ORT_DYLIB_PATH", &cpu_library)
        .env("EDGEID_BIN", "/nonexistent/edgeid")
        .args(["--timeout", "5"])
        .output()
        .expect("run scripts/gpu-check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    for line in ["gpu", "libonnxruntime", "tensorrt"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(line) && l.contains("FAIL")),
            "no FAIL line for {line}:\n{stdout}"
        );
    }
    assert!(stderr.contains("nothing was run"), "{stderr}");
}
