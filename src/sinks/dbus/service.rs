//! Serving the interface: connect to the configured bus, claim the name,
//! and forward what the engine reports (enrollment progress, walk-up
//! verdicts, challenge hints) as signals.

use tokio::sync::{broadcast, mpsc};
use zbus::object_server::SignalEmitter;

use super::auth::AdminPolicy;
use super::config::DbusConfig;
use super::interface::Auth1;
use crate::api::{ChallengeHint, EngineHandle, Origin, RateLimiter, VerdictOut};

pub const BUS_NAME: &str = "org.edgeid.Auth1";
pub const OBJECT_PATH: &str = "/org/edgeid/Auth1";

/// Why the D-Bus sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error(
        "cannot serve {BUS_NAME} on the D-Bus bus {bus:?} (check [dbus] bus, that the bus is running, and that its policy lets this user own {BUS_NAME})"
    )]
    Serve {
        bus: String,
        #[source]
        source: zbus::Error,
    },
}

/// Connects to the configured bus, claims `org.edgeid.Auth1` and serves
/// until the returned connection is dropped. `walk_up` carries verdicts
/// issued without a request (sent as `VerdictIssued`), `hints` the
/// liveness challenges of requests in progress (sent as `Hint`).
pub async fn serve(
    config: &DbusConfig,
    engine: EngineHandle,
    mut walk_up: mpsc::UnboundedReceiver<VerdictOut>,
    mut hints: broadcast::Receiver<ChallengeHint>,
) -> Result<zbus::Connection, DbusError> {
    let fail = |source: zbus::Error| DbusError::Serve {
        bus: config.bus.clone(),
        source,
    };
    let iface = Auth1 {
        engine,
        admin: AdminPolicy::new(&config.admin_group),
        rate: RateLimiter::new(config.requests_per_minute),
    };
    let builder = match config.bus.as_str() {
        "system" => zbus::connection::Builder::system(),
        "session" => zbus::connection::Builder::session(),
        address => zbus::connection::Builder::address(address),
    }
    .map_err(fail)?;
    let conn = builder
        .name(BUS_NAME)
        .map_err(fail)?
        .serve_at(OBJECT_PATH, iface)
        .map_err(fail)?
        .build()
        .await
        .map_err(fail)?;
    let emitter = SignalEmitter::new(&conn, OBJECT_PATH)
        .map_err(fail)?
        .into_owned();
    tokio::spawn(async move {
        loop {
            let sent = tokio::select! {
                v = walk_up.recv() => match v {
                    Some(v) if v.origin == Origin::WalkUp => Auth1::verdict_issued(&emitter, &v.verdict).await,
                    Some(_) => Ok(()),
                    None => std::future::pending().await,
                },
                h = hints.recv() => match h {
                    Ok(h) => Auth1::hint(&emitter, &h.nonce, &h.hint).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "D-Bus: challenge hints dropped");
                        Ok(())
                    }
                    Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
                },
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "D-Bus: signal not sent");
            }
        }
    });
    tracing::info!(bus = %config.bus, name = BUS_NAME, "D-Bus: serving");
    Ok(conn)
}
