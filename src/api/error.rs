//! The errors a caller of the engine gets back.

/// Errors a caller can act on; each maps to a named D-Bus error
/// (`org.edgeid.Auth1.Error.<Variant>`) and an MQTT error message.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ApiError {
    #[error("{0}")]
    NotAuthorized(String),
    #[error("{0}")]
    NoSuchSubject(String),
    /// EnrollStart for a subject already enrolled (EnrollReplace replaces).
    #[error("{0}")]
    SubjectExists(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    ShuttingDown(String),
    #[error("{0}")]
    PresentationAttack(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The last part of the D-Bus error name and the MQTT `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAuthorized(_) => "NotAuthorized",
            Self::NoSuchSubject(_) => "NoSuchSubject",
            Self::SubjectExists(_) => "SubjectExists",
            Self::Busy(_) => "Busy",
            Self::Timeout(_) => "Timeout",
            Self::InvalidArgument(_) => "InvalidArgument",
            Self::Disabled(_) => "Disabled",
            Self::ShuttingDown(_) => "ShuttingDown",
            Self::PresentationAttack(_) => "PresentationAttack",
            Self::Internal(_) => "Internal",
        }
    }
}
