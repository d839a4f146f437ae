//! What goes wrong in the MQTT sink. At start (`Read`) it stops the
//! daemon; on a live connection (`Connection`, `EventLoopStopped`) it is
//! logged and the sink reconnects, verdicts waiting in the on-disk queue.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// A file the `[mqtt]` section names cannot be read.
    #[error("cannot read {key} {}", path.display())]
    Read {
        /// The config key naming the file, e.g. `mqtt.tls.ca_file`.
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The broker connection failed (refused, TLS, I/O, timeout).
    #[error(transparent)]
    Connection(#[from] rumqttc::v5::ConnectionError),
    /// No CONNACK within the time given (`probe`).
    #[error("the broker did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The broker answered the CONNECT with a refusal (`probe`).
    #[error("the broker refused the connection: {0}")]
    Refused(String),
    #[error("the MQTT event loop stopped")]
    EventLoopStopped,
    /// The device id cannot name a topic level (set at `keys init`).
    #[error(
        "device id {0:?} cannot name an MQTT topic level: no '/', '#', '+' or control characters"
    )]
    DeviceId(String),
}
