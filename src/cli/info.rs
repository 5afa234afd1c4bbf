//! `simclr info --model NAME [--image-size N]`: architecture summary from shapes alone.

use crate::nn::{ProjectionHead, ResNet, ResNetConfig};
use crate::params::ParamStore;
use crate::Result;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Architecture, r{18,34,50,101,152,200}_{1..4}x_sk{0|1}.
    #[arg(long, default_value = "r50_1x_sk1")]
    pub model: String,
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
    /// Check that this checkpoint holds exactly the encoder's tensors with the right shapes.
    #[arg(long)]
    pub checkpoint: Option<std::path::PathBuf>,
}

pub fn run(a: &InfoArgs) -> Result<()> {
    let cfg = ResNetConfig::parse(&a.model)?
        .for_image_size(a.image_size)
        .with_in_channels(a.in_channels);
    if let Some(path) = &a.checkpoint {
        let mut store = ParamStore::new(crate::DType::F32, 0);
        ResNet::new(&mut store, "encoder", &cfg)?;
        crate::checkpoint::load(&mut store, path)?;
        println!("checkpoint {} matches {}", path.display(), cfg.name());
    }
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
