//! Weights in and out: features for downstream use (`simclr embed`), torchvision ResNet state
//! dicts (`simclr export --to torchvision`, `simclr import --from torchvision`) and the
//! official SimCLRv2 TensorFlow release (`simclr import --from simclr-tf`, read by our own
//! tensor-bundle reader). Files other frameworks read or write go through [`st_io`], which
//! (unlike our checkpoints) carries integer tensors.

pub mod convert;
pub mod convert_tf;
pub mod embed;
pub mod simclr_tf;
pub mod simclr_tf2;
pub mod st_io;
pub mod tf_checkpoint;
pub mod torchvision;
