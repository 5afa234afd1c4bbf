//! Weights in and out: features for downstream use (`simclr embed`), torchvision ResNet state
//! dicts (`simclr export --to torchvision`, `simclr import --from torchvision`). Files other
//! frameworks read or write go through [`st_io`], which (unlike our checkpoints) carries
//! integer tensors.

pub mod convert;
pub mod embed;
pub mod st_io;
pub mod torchvision;
