//! One connection to the broker with the daemon's own settings (address,
//! credentials, TLS), for `edgeid doctor`: CONNECT until CONNACK, then a
//! clean DISCONNECT. Under its own client id and without the daemon's last
//! will, so probing never disturbs a running daemon's session or status.

use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
use rumqttc::v5::{AsyncClient, Event};
use serde::Serialize;

use super::config::MqttConfig;
use super::error::MqttError;
use super::options::connection;

/// A broker that accepted the connection.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerProbe {
    pub address: String,
    /// Whether the connection was TLS (`[mqtt.tls] ca_file` set).
    pub tls: bool,
    /// From the first byte sent to the CONNACK.
    pub connect_ms: f64,
}

/// Connects as `edgeid-<device>-doctor`; fails on refusal, TLS or I/O
/// errors, a CONNACK other than success, or no answer within `timeout`.
pub async fn probe(
    c: &MqttConfig,
    device: &str,
    timeout: Duration,
) -> Result<BrokerProbe, MqttError> {
    let options = connection(c, format!("edgeid-{device}-doctor"))?;
    let (client, mut eventloop) = AsyncClient::new(options, 4);
    let start = Instant::now();
    let connack = tokio::time::timeout(timeout, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => break Ok(ack.code),
                Ok(_) => continue,
                Err(e) => break Err(e),
            }
        }
    })
    .await
    .map_err(|_| MqttError::Timeout(timeout))?
    .map_err(MqttError::Connection)?;
    let connect_ms = start.elapsed().as_secs_f64() * 1e3;
    if connack != ConnectReturnCode::Success {
        return Err(MqttError::Refused(format!("{connack:?}")));
    }
    // A clean goodbye; the broker needs no answer, so a short grace is enough.
    if client.disconnect().await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_millis(500), eventloop.poll()).await;
    }
    Ok(BrokerProbe {
        address: format!("{}:{}", c.host, c.port),
        tls: c.tls.ca_file.is_some(),
        connect_ms,
    })
}
