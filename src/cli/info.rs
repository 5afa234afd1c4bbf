//! `simclr info --model NAME [--image-size N]`: architecture summary from shapes alone;
//! `simclr info --device cuda`: the CUDA library and device report (device_report.rs).

use crate::nn::{ProjectionHead, ResNet, ResNetConfig};
use crate::params::ParamStore;
use crate::Result;

#[derive(clap::Args, Debug, Clone)]
pub struct InfoArgs {
    /// Architecture, r{18,34,50,101,152,200}_{1..4}x_sk{0|1} (default r50_1x_sk1, or the
    /// one a --checkpoint written by the trainer holds).
    #[arg(long)]
    pub model: Option<String>,
    /// Image side in pixels; 32 or less selects the small-image stem.
    #[arg(long, default_value_t = 224)]
    pub image_size: usize,
    /// Input channels (3 for RGB, 1 for grayscale data).
    #[arg(long, default_value_t = 3)]
    pub in_channels: usize,
    /// Also describe a projection head of this many layers.
    #[arg(long, default_value_t = 3)]
    pub head_layers: usize,
    /// Print only the totals, not every layer.
    #[arg(long)]
    pub brief: bool,
    /// Check that this checkpoint holds exactly the tensors of its network (as its metadata
    /// describes, or else the encoder of --model), with their shapes, all finite.
    #[arg(long)]
    pub checkpoint: Option<std::path::PathBuf>,
    /// Instead of a model summary, report this device: for `cuda`, every CUDA library's path
    /// and version (or the paths tried) and the GPU; exits non-zero when it cannot be used.
    #[arg(long)]
    pub device: Option<String>,
    /// Instead of a model summary, list every GPU kernel's sm_90 resources as ptxas reported
    /// them at build time (registers, shared and local memory, spills) and how many of its
    /// blocks an SM holds at 256 threads each. Needs a build with --features cuda.
    #[arg(long, conflicts_with_all = ["device", "checkpoint"])]
    pub kernels: bool,
}

pub fn run(a: &InfoArgs) -> Result<()> {
    if let Some(d) = &a.device {
        return super::device_report::run(d);
    }
    if a.kernels {
        return super::kernels_report::run();
    }
    let mut a = a.clone();
    if let Some(path) = a.checkpoint.clone() {
        check_checkpoint(&mut a, &path)?;
    }
    let model = a.model.clone().unwrap_or_else(|| "r50_1x_sk1".into());
    let cfg = ResNetConfig::parse(&model)?
        .for_image_size(a.image_size)
        .with_in_channels(a.in_channels);
    let mut store = ParamStore::meta();
    let net = ResNet::new(&mut store, "encoder", &cfg)?;
    let encoder_params = store.num_trainable();
    let summary = net.describe(a.image_size)?;
    let mut head_store = ParamStore::meta();
    let head = ProjectionHead::new(&mut head_store, "head", cfg.out_dim(), 128, a.head_layers)?;
    let mut head_summary = crate::nn::Summary::default();
    head.describe(&[1, cfg.out_dim()], &mut head_summary);
    if !a.brief {
        print!("{summary}");
        print!("{head_summary}");
    }
    println!("model:            {}", cfg.name());
    println!(
        "image size:       {} px ({} stem)",
        a.image_size,
        if cfg.small_stem {
            "small-image"
        } else if cfg.sk {
            "ResNet-D"
        } else {
            "7x7"
        }
    );
    println!("representation:   {}", cfg.out_dim());
    println!("selective kernel: {}", cfg.sk_note());
    println!(
        "encoder params:   {} ({:.2} M)",
        encoder_params,
        encoder_params as f64 / 1e6
    );
    println!(
        "head params:      {} ({:.2} M, {} layers)",
        head_store.num_trainable(),
        head_store.num_trainable() as f64 / 1e6,
        a.head_layers
    );
    println!(
        "forward GMACs:    {:.3} per image (encoder)",
        summary.total_macs() as f64 / 1e9
    );
    Ok(())
}

/// Checks a checkpoint from its header (names, shapes) against the network it describes, then
/// its values (finite floats), without building the network; the summary that follows is of
/// that network.
fn check_checkpoint(a: &mut InfoArgs, path: &std::path::Path) -> Result<()> {
    use crate::train::{ckpt_check, model::ModelMeta};
    let what = match ModelMeta::read(path) {
        Ok(meta) => {
            crate::train::model::check_model(&meta, a.model.as_deref(), path)?;
            ckpt_check::check(path, &meta, |_| true, true)?;
            (a.image_size, a.in_channels) = (meta.image_size, meta.in_channels);
            a.head_layers = meta.proj_layers;
            a.model = Some(meta.model.clone());
            format!("a {} {} checkpoint", meta.model, meta.stage)
        }
        // No trainer metadata: the file must be exactly the encoder of --model.
        Err(crate::Error::Checkpoint { msg, .. }) if msg.starts_with("no simclr metadata") => {
            let model = a.model.clone().unwrap_or_else(|| "r50_1x_sk1".into());
            let cfg = ResNetConfig::parse(&model)?
                .for_image_size(a.image_size)
                .with_in_channels(a.in_channels);
            let mut store = ParamStore::meta();
            ResNet::new(&mut store, "encoder", &cfg)?;
            let header = ckpt_check::header_shapes(path)?;
            let expected: std::collections::HashMap<String, Vec<usize>> = store
                .entries()
                .iter()
                .map(|e| (e.name.clone(), e.shape.clone()))
                .collect();
            if header != expected {
                return Err(crate::Error::Checkpoint {
                    path: path.to_path_buf(),
                    msg: format!(
                        "has no simclr metadata and is not exactly the encoder of {} ({} \
                         tensors expected, {} found)",
                        cfg.name(),
                        expected.len(),
                        header.len()
                    ),
                });
            }
            format!("the encoder of {}", cfg.name())
        }
        Err(e) => return Err(e),
    };
    let bytes = std::fs::read(path).map_err(|e| crate::Error::io(path, e))?;
    crate::checkpoint::read_weights(&bytes, path)?;
    println!("checkpoint {} matches {what}", path.display());
    Ok(())
}
