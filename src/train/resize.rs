//! Fine-tuning at another image size than pretraining: convolution and BN weights do not depend
//! on the size, only the stem's kind does (the small-image stem at 32 px or less), so the
//! classifier keeps the architecture of its checkpoint and is simply fed this run's images.

use super::model::ModelMeta;

/// The image size to record in the classifier's metadata: the checkpoint's, which fixes the
/// stem. Says so when the run trains at another size.
pub fn pretrained_size(pretrained: &ModelMeta, train_size: usize) -> usize {
    if pretrained.image_size != train_size {
        println!(
            "fine-tuning at {train_size} px a model pretrained at {} px (its {} stem is kept)",
            pretrained.image_size,
            if pretrained.image_size <= 32 {
                "small-image"
            } else {
                "ImageNet"
            }
        );
    }
    pretrained.image_size
}
