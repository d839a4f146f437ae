//! What an accepted face sample becomes in the store: one template row per
//! sample, tied to the embedder that made it. Shared by `edgeid enroll` and
//! the daemon's `EnrollStart`, so both seal exactly the same record.

use crate::infer::ModelSpec;
use crate::pipeline::ModelEmbedding;
use crate::store::templates::NewTemplate;
use crate::vision::embed::Embedding;
use crate::vision::quality::QualityReport;

/// The modality name stored with face templates.
pub const FACE: &str = "face";

/// Template rows for accepted face samples: one per sample and embedder,
/// each labelled with (and sealed to) the model that made it.
pub fn evidence_templates<'a>(
    samples: &'a [(Vec<ModelEmbedding>, QualityReport)],
) -> Vec<NewTemplate<'a>> {
    samples
        .iter()
        .flat_map(|(embeddings, q)| {
            let quality = serde_json::to_value(q).unwrap_or_default();
            embeddings.iter().map(move |e| NewTemplate {
                modality: FACE,
                model_id: &e.model_id,
                model_sha256: &e.model_sha256,
                vector: e.embedding.as_slice(),
                quality: quality.clone(),
            })
        })
        .collect()
}

/// Template rows for accepted face samples made by the embedder `spec`.
pub fn face_templates<'a>(
    spec: &'a ModelSpec,
    samples: &'a [(Embedding, QualityReport)],
) -> Vec<NewTemplate<'a>> {
    samples
        .iter()
        .map(|(e, q)| NewTemplate {
            modality: FACE,
            model_id: &spec.id,
            model_sha256: &spec.sha256,
            vector: e.as_slice(),
            quality: serde_json::to_value(q).unwrap_or_default(),
        })
        .collect()
}
