//! A zbus client of `org.edgeid.Auth1` for the D-Bus tests: the whole
//! interface, plus the liveness `Hint` signal.

use super::bus::DbusDaemon;

#[zbus::proxy(
    interface = "org.edgeid.Auth1",
    default_service = "org.edgeid.Auth1",
    default_path = "/org/edgeid/Auth1"
)]
pub trait Auth1 {
    fn verify(&self, subject: &str, nonce: &str, timeout_ms: u32) -> zbus::Result<String>;
    fn verify_with(
        &self,
        subject: &str,
        nonce: &str,
        timeout_ms: u32,
        modalities: &str,
    ) -> zbus::Result<String>;
    fn identify(&self, nonce: &str, timeout_ms: u32) -> zbus::Result<String>;
    fn enroll_start(&self, subject: &str, modalities: &[&str]) -> zbus::Result<()>;
    fn enroll_replace(&self, subject: &str, modalities: &[&str]) -> zbus::Result<()>;
    fn revoke(&self, subject: &str) -> zbus::Result<()>;
    fn unlock(&self, subject: &str) -> zbus::Result<u32>;
    fn list_subjects(&self) -> zbus::Result<Vec<String>>;
    #[zbus(signal)]
    fn enroll_progress(
        &self,
        subject: &str,
        done: u32,
        needed: u32,
        hint: &str,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    fn enroll_done(&self, subject: &str, result: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    fn hint(&self, nonce: &str, hint: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    fn verdict_issued(&self, verdict: &str) -> zbus::Result<()>;
    #[zbus(property)]
    fn device_key(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn models(&self) -> zbus::Result<Vec<String>>;
}

/// A client on the test's private bus.
pub async fn connect(bus: &DbusDaemon) -> Auth1Proxy<'static> {
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .expect("address")
        .build()
        .await
        .expect("connect to the private bus");
    Auth1Proxy::new(&conn).await.expect("proxy")
}
