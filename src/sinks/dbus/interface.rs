//! The `org.edgeid.Auth1` interface, modelled on fprintd. Methods return
//! the signed verdict (compact JWS); a request that cannot be answered with
//! a verdict fails with a named error `org.edgeid.Auth1.Error.<Name>`
//! carrying a sentence for people.
//!
//! Admin methods (EnrollStart, Revoke, ListSubjects) are checked against the
//! caller's uid and groups here (`auth`), not only by the bus policy.

use tokio::sync::mpsc;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;

use super::auth::{AdminPolicy, require_admin};
use crate::api::{ApiError, EngineHandle, EnrollEvent, Origin};
use crate::decision::Mode;

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.edgeid.Auth1.Error")]
pub enum Auth1Error {
    #[zbus(error)]
    ZBus(zbus::Error),
    NotAuthorized(String),
    NoSuchSubject(String),
    Busy(String),
    Timeout(String),
    InvalidArgument(String),
    Disabled(String),
    ShuttingDown(String),
    PresentationAttack(String),
    Internal(String),
}

impl From<ApiError> for Auth1Error {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotAuthorized(m) => Self::NotAuthorized(m),
            ApiError::NoSuchSubject(m) => Self::NoSuchSubject(m),
            ApiError::Busy(m) => Self::Busy(m),
            ApiError::Timeout(m) => Self::Timeout(m),
            ApiError::InvalidArgument(m) => Self::InvalidArgument(m),
            ApiError::Disabled(m) => Self::Disabled(m),
            ApiError::ShuttingDown(m) => Self::ShuttingDown(m),
            ApiError::PresentationAttack(m) => Self::PresentationAttack(m),
            ApiError::Internal(m) => Self::Internal(m),
        }
    }
}

pub struct Auth1 {
    pub(super) engine: EngineHandle,
    pub(super) admin: AdminPolicy,
    /// Enrollment progress, sent as signals by the service's task.
    pub(super) enroll_events: mpsc::UnboundedSender<(String, EnrollEvent)>,
}

/// Empty string = no nonce (D-Bus has no optional arguments).
fn nonce_arg(nonce: &str) -> Option<String> {
    (!nonce.is_empty()).then(|| nonce.to_owned())
}

#[zbus::interface(name = "org.edgeid.Auth1")]
impl Auth1 {
    /// 1:1: is the person at the camera `subject`? Returns the signed verdict.
    async fn verify(
        &self,
        subject: &str,
        nonce: &str,
        timeout_ms: u32,
    ) -> Result<String, Auth1Error> {
        let v = self
            .engine
            .decide(
                Mode::Verify,
                Some(subject.to_owned()),
                nonce_arg(nonce),
                timeout_ms,
                Origin::Dbus,
            )
            .await?;
        Ok(v.verdict)
    }

    /// 1:N (when enabled in the config): who is at the camera?
    async fn identify(&self, nonce: &str, timeout_ms: u32) -> Result<String, Auth1Error> {
        let v = self
            .engine
            .decide(
                Mode::Identify,
                None,
                nonce_arg(nonce),
                timeout_ms,
                Origin::Dbus,
            )
            .await?;
        Ok(v.verdict)
    }

    /// Starts enrolling `subject` from the camera; progress arrives as
    /// EnrollProgress signals and the end as EnrollDone. Admin only.
    async fn enroll_start(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        subject: &str,
        modalities: Vec<String>,
    ) -> Result<(), Auth1Error> {
        require_admin(conn, &header, &self.admin, "EnrollStart").await?;
        if modalities.len() > 4 || !modalities.iter().all(|m| m == "face") {
            return Err(Auth1Error::InvalidArgument(format!(
                "modalities {modalities:?} are not available: this device enrols [\"face\"] (or [] for the default)"
            )));
        }
        self.engine
            .enroll(subject.to_owned(), self.enroll_events.clone())
            .await?;
        Ok(())
    }

    /// Deletes every template of `subject`. Admin only.
    async fn revoke(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        subject: &str,
    ) -> Result<(), Auth1Error> {
        require_admin(conn, &header, &self.admin, "Revoke").await?;
        self.engine.revoke(subject.to_owned()).await?;
        Ok(())
    }

    /// Enrolled subject ids. Admin only.
    async fn list_subjects(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<Vec<String>, Auth1Error> {
        require_admin(conn, &header, &self.admin, "ListSubjects").await?;
        Ok(self.engine.list_subjects().await?)
    }

    #[zbus(property)]
    fn version(&self) -> String {
        self.engine.info.version.clone()
    }

    /// The device's public key as a JWK (JSON), to verify verdicts with.
    #[zbus(property)]
    fn device_key(&self) -> String {
        self.engine.info.device_key_jwk.clone()
    }

    /// "role id sha256" for each model in use.
    #[zbus(property)]
    fn models(&self) -> Vec<String> {
        self.engine.info.models.clone()
    }

    #[zbus(signal)]
    pub(super) async fn enroll_progress(
        emitter: &SignalEmitter<'_>,
        subject: &str,
        done: u32,
        needed: u32,
        hint: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn enroll_done(
        emitter: &SignalEmitter<'_>,
        subject: &str,
        result: &str,
    ) -> zbus::Result<()>;

    /// Walk-up mode: every verdict issued without a request.
    #[zbus(signal)]
    pub(super) async fn verdict_issued(
        emitter: &SignalEmitter<'_>,
        verdict: &str,
    ) -> zbus::Result<()>;

    /// Liveness challenge (`[liveness] mode = "challenge"`) for the Verify /
    /// Identify call carrying `nonce` ("" when it gave none), to show the
    /// person, e.g. "blink, then turn your head to your left". An addition
    /// to the fprintd-like interface; subscribe before calling.
    #[zbus(signal)]
    pub(super) async fn hint(
        emitter: &SignalEmitter<'_>,
        nonce: &str,
        hint: &str,
    ) -> zbus::Result<()>;
}
