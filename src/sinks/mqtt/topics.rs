//! The topic names under `<prefix>/<device>/`.

pub struct Topics {
    pub verdict: String,
    pub status: String,
    pub request: String,
    pub error: String,
}

impl Topics {
    pub fn new(prefix: &str, device: &str) -> Self {
        let t = |leaf: &str| format!("{prefix}/{device}/{leaf}");
        Self {
            verdict: t("verdict"),
            status: t("status"),
            request: t("request"),
            error: t("error"),
        }
    }
}
