//! Why the daemon could not start. Each variant keeps the error that
//! caused it as its source: the message says what failed, the cause (which
//! `edgeid run` prints after it) says why and, for the store, keys and
//! models, what to do.

use crate::decision::AttemptError;
use crate::infer::InferError;
use crate::sinks::dbus::DbusError;
use crate::sinks::mqtt::MqttError;
use crate::store::StoreError;
use crate::store::keys::KeyError;
use crate::vision::VisionError;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot load the key-encryption key")]
    Kek(#[source] KeyError),
    #[error("cannot open the store")]
    Store(#[source] StoreError),
    #[error("cannot unlock the device keys")]
    DeviceKeys(#[source] StoreError),
    #[error("cannot read the model manifest (run `edgeid models check`)")]
    Models(#[source] InferError),
    #[error("cannot load the face models (run `edgeid models check`)")]
    Pipeline(#[source] VisionError),
    #[error("cannot load the voice model (run `edgeid models check`)")]
    VoiceModels(#[source] InferError),
    #[error(
        "decision.modalities = \"face+voice\" needs a fusion of {face} and {voice} in the models' manifest, and none is fitted for these model files (edgeid eval fused)"
    )]
    NoFactorFusion { face: String, voice: String },
    #[error("cannot start the inference backend ([inference] in the config)")]
    Inference(#[source] InferError),
    #[error("the decision path could not start")]
    Decision(#[from] AttemptError),
    #[error("cannot start the capture thread (is the system out of threads or memory?)")]
    Capture(#[source] std::io::Error),
    #[error("the engine thread died while starting (see the log above; a bug: please report it)")]
    EngineDied,
    #[error("the D-Bus sink could not start")]
    Dbus(#[from] DbusError),
    #[error("the MQTT sink could not start")]
    Mqtt(#[from] MqttError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot start the engine thread (is the system out of threads or memory?)")]
    EngineThread(#[source] std::io::Error),
    #[error("cannot listen for SIGTERM / SIGINT")]
    Signals(#[source] std::io::Error),
}
