//! What the store verbs share: the config, the store, the unlocked keys and
//! a face pipeline loaded only when a verb gets as far as needing it.

use anyhow::Context;

use edgeid::config::Config;
use edgeid::pipeline::FacePipeline;
use edgeid::store::{Kek, KeyRing, Store, keys};

use super::GlobalArgs;
use super::pipeline::load_pipeline;

pub fn load_config(global: &GlobalArgs) -> anyhow::Result<Config> {
    Ok(Config::load(global.config.as_deref())?)
}

/// Opens an existing store (never creates one), with the config's
/// `[anchor]` for when its keys are unlocked.
pub fn open_store(global: &GlobalArgs, config: &Config) -> anyhow::Result<Store> {
    let mut store = Store::open(&global.state_dir)?;
    store.set_counter_config(config.anchor.clone());
    Ok(store)
}

/// Opens an existing store for a verb that only reads: this works on a
/// full disk too (`Store::open_for_reading`).
pub fn open_store_for_reading(global: &GlobalArgs, config: &Config) -> anyhow::Result<Store> {
    let mut store = Store::open_for_reading(&global.state_dir)?;
    store.set_counter_config(config.anchor.clone());
    Ok(store)
}

/// [`open_unlocked`] for a verb that only reads (works on a full disk).
pub fn open_unlocked_for_reading(
    global: &GlobalArgs,
    config: &Config,
) -> anyhow::Result<(Store, KeyRing)> {
    let kek = locate_kek(config)?;
    let mut store = open_store_for_reading(global, config)?;
    let ring = keys::unlock(&mut store, &kek)?;
    Ok((store, ring))
}

pub fn locate_kek(config: &Config) -> anyhow::Result<Kek> {
    Ok(Kek::locate(config.kek_file.as_deref())?)
}

/// Opens the store and its keys; any KEK problem stops here, before a
/// write. A store behind its rollback anchor, or whose stored public key is
/// not its signing key's, is refused here too.
pub fn open_unlocked(global: &GlobalArgs, config: &Config) -> anyhow::Result<(Store, KeyRing)> {
    let kek = locate_kek(config)?;
    let mut store = open_store(global, config)?;
    let ring = keys::unlock(&mut store, &kek)?;
    Ok((store, ring))
}

/// A face pipeline loaded on first use.
pub struct PipelineCell<'a> {
    global: &'a GlobalArgs,
    pipeline: Option<FacePipeline>,
    pub load_ms: Option<f64>,
}

impl<'a> PipelineCell<'a> {
    pub fn new(global: &'a GlobalArgs) -> Self {
        Self {
            global,
            pipeline: None,
            load_ms: None,
        }
    }

    pub fn get(&mut self) -> anyhow::Result<&FacePipeline> {
        if self.pipeline.is_none() {
            let t = std::time::Instant::now();
            let p =
                load_pipeline(self.global).context("the face models are needed for this verb")?;
            self.load_ms = Some(t.elapsed().as_secs_f64() * 1e3);
            self.pipeline = Some(p);
        }
        self.pipeline.as_ref().context("pipeline not loaded")
    }

    pub fn global(&self) -> &'a GlobalArgs {
        self.global
    }
}
