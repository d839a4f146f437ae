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

use super::OBJECT_PATH;
use super::auth::{AdminPolicy, caller_uid, require_admin};
use crate::api::{Admin, ApiError, EngineHandle, EnrollEvent, Origin, RateLimiter};
use crate::decision::{Modalities, Mode};

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.edgeid.Auth1.Error")]
pub enum Auth1Error {
    #[zbus(error)]
    ZBus(zbus::Error),
    NotAuthorized(String),
    NoSuchSubject(String),
    SubjectExists(String),
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
            ApiError::SubjectExists(m) => Self::SubjectExists(m),
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
    /// Verify / Identify calls per caller uid.
    pub(super) rate: RateLimiter<u32>,
}

impl Auth1 {
    /// The caller's rate limit (`dbus.requests_per_minute` per uid).
    async fn admit(&self, conn: &zbus::Connection, header: &Header<'_>) -> Result<(), ApiError> {
        let uid = caller_uid(conn, header).await?;
        self.rate.admit(&uid, std::time::Instant::now())
    }

    /// Verify and VerifyWith: the caller's rate, then one verdict under
    /// `modalities` (`None`: the site's policy).
    async fn verify_under(
        &self,
        conn: &zbus::Connection,
        header: &Header<'_>,
        subject: &str,
        nonce: &str,
        timeout_ms: u32,
        modalities: Option<Modalities>,
    ) -> Result<String, Auth1Error> {
        self.admit(conn, header).await?;
        let v = self
            .engine
            .decide(
                Mode::Verify,
                Some(subject.to_owned()),
                nonce_arg(nonce),
                timeout_ms,
                Origin::Dbus,
                modalities,
            )
            .await?;
        Ok(v.verdict)
    }

    async fn enroll(
        &self,
        conn: &zbus::Connection,
        header: &Header<'_>,
        method: &str,
        subject: &str,
        modalities: Vec<String>,
        replace: bool,
    ) -> Result<(), Auth1Error> {
        let uid = require_admin(conn, header, &self.admin, method).await?;
        let modalities = enrol_modalities(&modalities)?;
        let by = Admin {
            via: Origin::Dbus,
            uid,
        };
        let events = progress_to_caller(conn, header)?;
        self.engine
            .enroll(subject.to_owned(), modalities, replace, by, events)
            .await?;
        Ok(())
    }
}

/// A channel whose enrolment events become EnrollProgress / EnrollDone
/// signals addressed to the caller only (unicast): other clients of the
/// bus learn nothing of who is being enrolled. The forwarding task ends
/// when the engine drops the sender, after EnrollDone.
fn progress_to_caller(
    conn: &zbus::Connection,
    header: &Header<'_>,
) -> Result<mpsc::UnboundedSender<(String, EnrollEvent)>, Auth1Error> {
    let sender = header.sender().ok_or_else(|| {
        Auth1Error::InvalidArgument("a method call without a sender cannot be answered".into())
    })?;
    let emitter = SignalEmitter::new(conn, OBJECT_PATH)?
        .set_destination(sender.to_owned().into())
        .into_owned();
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, EnrollEvent)>();
    tokio::spawn(async move {
        while let Some((subject, event)) = rx.recv().await {
            let sent = match event {
                EnrollEvent::Progress { done, needed, hint } => {
                    Auth1::enroll_progress(&emitter, &subject, done, needed, &hint).await
                }
                EnrollEvent::Done { result } => {
                    Auth1::enroll_done(&emitter, &subject, &result).await
                }
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "D-Bus: enrolment signal not sent");
            }
        }
    });
    Ok(tx)
}

/// EnrollStart's modality list: ["face"], ["voice"], both, or [] for the face.
fn enrol_modalities(asked: &[String]) -> Result<Modalities, Auth1Error> {
    let face = asked.iter().any(|m| m == "face");
    let voice = asked.iter().any(|m| m == "voice");
    if asked.len() > 2 || asked.iter().any(|m| m != "face" && m != "voice") {
        let asked = crate::untrusted::echo(&format!("{asked:?}"), crate::untrusted::SHORT);
        return Err(Auth1Error::InvalidArgument(format!(
            "modalities {asked} cannot be enrolled: use [\"face\"], [\"voice\"], [\"face\", \"voice\"] (or [] for the face)"
        )));
    }
    Ok(match (face, voice) {
        (_, false) => Modalities::Face,
        (false, true) => Modalities::Voice,
        (true, true) => Modalities::FaceAndVoice,
    })
}

/// Empty string = the site's policy; otherwise a stronger one.
fn modalities_arg(modalities: &str) -> Result<Option<Modalities>, Auth1Error> {
    if modalities.is_empty() {
        return Ok(None);
    }
    modalities
        .parse()
        .map(Some)
        .map_err(|e: crate::decision::ModalitiesError| Auth1Error::InvalidArgument(e.to_string()))
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
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        subject: &str,
        nonce: &str,
        timeout_ms: u32,
    ) -> Result<String, Auth1Error> {
        self.verify_under(conn, &header, subject, nonce, timeout_ms, None)
            .await
    }

    /// As Verify, under a stronger policy than the site's `[decision]
    /// modalities`: "face", "voice", "face+voice" or "face|voice" ("" for
    /// the site's). A weaker policy is refused (`InvalidArgument`).
    async fn verify_with(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        subject: &str,
        nonce: &str,
        timeout_ms: u32,
        modalities: &str,
    ) -> Result<String, Auth1Error> {
        let modalities = modalities_arg(modalities)?;
        self.verify_under(conn, &header, subject, nonce, timeout_ms, modalities)
            .await
    }

    /// 1:N (when enabled in the config): who is at the camera?
    async fn identify(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        nonce: &str,
        timeout_ms: u32,
    ) -> Result<String, Auth1Error> {
        self.admit(conn, &header).await?;
        let v = self
            .engine
            .decide(
                Mode::Identify,
                None,
                nonce_arg(nonce),
                timeout_ms,
                Origin::Dbus,
                None,
            )
            .await?;
        Ok(v.verdict)
    }

    /// Starts enrolling a new `subject` from the camera (["face"] or []),
    /// the microphone (["voice"]) or both; progress arrives
    /// as EnrollProgress signals and the end as EnrollDone, both to the
    /// caller only. An enrolled subject is refused (`SubjectExists`): use
    /// EnrollReplace. Admin only.
    async fn enroll_start(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        subject: &str,
        modalities: Vec<String>,
    ) -> Result<(), Auth1Error> {
        self.enroll(conn, &header, "EnrollStart", subject, modalities, false)
            .await
    }

    /// As EnrollStart, for a subject already enrolled: its templates are
    /// replaced when the new enrolment succeeds, and kept when it fails
    /// (`NoSuchSubject` if it is not enrolled). Admin only.
    async fn enroll_replace(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        subject: &str,
        modalities: Vec<String>,
    ) -> Result<(), Auth1Error> {
        self.enroll(conn, &header, "EnrollReplace", subject, modalities, true)
            .await
    }

    /// Deletes every template of `subject`. Admin only.
    async fn revoke(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        subject: &str,
    ) -> Result<(), Auth1Error> {
        let uid = require_admin(conn, &header, &self.admin, "Revoke").await?;
        let by = Admin {
            via: Origin::Dbus,
            uid,
        };
        self.engine.revoke(subject.to_owned(), by).await?;
        Ok(())
    }

    /// Clears `subject`'s failed attempts, ending any lockout wait;
    /// returns how many were cleared. Audited with the caller's uid. Admin only.
    async fn unlock(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        subject: &str,
    ) -> Result<u32, Auth1Error> {
        let uid = require_admin(conn, &header, &self.admin, "Unlock").await?;
        let by = Admin {
            via: Origin::Dbus,
            uid,
        };
        let cleared = self.engine.unlock(subject.to_owned(), by).await?;
        Ok(u32::try_from(cleared).unwrap_or(u32::MAX))
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
