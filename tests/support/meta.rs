//! The metadata of the small pretraining networks the GPU and mixed-precision tests build
//! (included by path, so a test that needs only this pulls in nothing else).

use simclr::train::model::ModelMeta;

/// A pretraining network at 16 px (`model` like `r18_0.25x_sk1`).
pub fn pretrain_meta(model: &str) -> ModelMeta {
    ModelMeta {
        stage: "pretrain".into(),
        model: model.into(),
        image_size: 16,
        in_channels: 3,
        proj_layers: 2,
        proj_dim: 16,
        proj_layer: 0,
        num_classes: 10,
        stem_pool_padding: simclr::nn::StemPoolPadding::Symmetric,
    }
}
