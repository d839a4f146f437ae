//! Requests in: the schema check (`request`), then the engine (which
//! refuses a replayed nonce);
//! the verdict goes back through the delivery queue, a refusal to the
//! `error` topic (QoS 0) with the request's nonce when it had one.

use rumqttc::v5::mqttbytes::QoS;
use tokio::sync::mpsc;

use super::link::Link;
use super::request::parse;
use super::sink::Sink;
use crate::api::{ApiError, Origin};

/// Refusals to publish on the `error` topic: (nonce, why).
pub(super) type ErrorTx = mpsc::UnboundedSender<(Option<String>, ApiError)>;

impl Sink {
    pub(super) fn on_request(&mut self, payload: &[u8], err_tx: &ErrorTx) {
        // The engine handle refuses a replayed nonce (every bus shares it).
        // Over the topic's rate: refused before parsing, as cheaply as can be.
        if let Err(e) = self.rate.admit(&(), std::time::Instant::now()) {
            let _ = err_tx.send((None, e));
            return;
        }
        let request = parse(payload, self.max_request_bytes);
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, bytes = payload.len(), "MQTT: request refused");
                let _ = err_tx.send((None, e));
                return;
            }
        };
        let Some(verdict_tx) = self.verdict_tx.clone() else {
            let _ = err_tx.send((
                Some(request.nonce),
                ApiError::ShuttingDown("edgeid is shutting down".into()),
            ));
            return;
        };
        let engine = self.engine.clone();
        let err_tx = err_tx.clone();
        tokio::spawn(async move {
            let nonce = request.nonce.clone();
            match engine
                .decide(
                    request.mode,
                    request.subject,
                    Some(request.nonce),
                    request.timeout_ms,
                    Origin::Mqtt,
                    request.modalities,
                )
                .await
            {
                Ok(v) => {
                    let _ = verdict_tx.send(v);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "MQTT: request not answered with a verdict");
                    let _ = err_tx.send((Some(nonce), e));
                }
            }
        });
    }

    pub(super) fn publish_error(&mut self, link: &mut Link, nonce: Option<&str>, e: &ApiError) {
        if !link.connected {
            self.refusals_unpublished += 1;
            tracing::warn!(
                code = e.code(),
                unpublished = self.refusals_unpublished,
                "MQTT: a refusal not published: the broker is unreachable"
            );
            return;
        }
        let body = serde_json::json!({"error": e.code(), "message": e.to_string(), "nonce": nonce});
        match link.client.try_publish(
            self.topics.error.clone(),
            QoS::AtMostOnce,
            false,
            body.to_string(),
        ) {
            Ok(()) => link.sent.push_back(None),
            Err(err) => {
                self.refusals_unpublished += 1;
                tracing::warn!(
                    error = %err,
                    code = e.code(),
                    unpublished = self.refusals_unpublished,
                    "MQTT: a refusal could not be published on the error topic"
                );
            }
        }
    }
}
