//! Architecture names `r{depth}_{width}x_sk{0|1}` and what they mean.

use super::StemPoolPadding;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Basic,
    Bottleneck,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResNetConfig {
    /// The name's depth (18 … 200), or 0 for a custom test configuration.
    pub depth: usize,
    pub block: BlockKind,
    /// Blocks in each of the four stages.
    pub layers: [usize; 4],
    /// Width multiplier: stage widths are base·w·[1, 2, 4, 8]. The paper uses 1, 2 and 3;
    /// fractions (0.25, 0.5) give narrow nets that train in minutes on a CPU.
    pub width: f64,
    /// `sk1`: selective kernels in bottleneck blocks, with the ResNet-D stem and shortcuts. As
    /// in the official TF2 code (`ResidualBlock` has no SK conv), basic blocks (depths 18, 34)
    /// get only the ResNet-D parts; [`has_sk_convs`](Self::has_sk_convs) tells them apart.
    pub sk: bool,
    /// 64 in every named architecture; smaller only for tests.
    pub base: usize,
    /// One 3x3 stride-1 convolution instead of the ImageNet stem (images of 32 px or less).
    pub small_stem: bool,
    pub in_channels: usize,
    pub sk_ratio: f64,
    pub sk_min_dim: usize,
    /// Padding of the ImageNet stem's max pool (TF "SAME" in imported official models).
    pub stem_pool_padding: StemPoolPadding,
}

pub const DEPTHS: [usize; 6] = [18, 34, 50, 101, 152, 200];
pub const MAX_WIDTH: f64 = 4.0;

impl ResNetConfig {
    /// Parses `r50_1x_sk1` and the like; the ImageNet stem is assumed until
    /// [`for_image_size`](Self::for_image_size) says otherwise.
    pub fn parse(name: &str) -> Result<Self> {
        let err = |msg: &str| Error::UnknownModel {
            name: name.to_string(),
            msg: msg.to_string(),
        };
        let form = "expected r{depth}_{width}x_sk{0|1}, e.g. r50_1x_sk1";
        let parts: Vec<&str> = name.split('_').collect();
        let [d, w, s] = parts[..] else {
            return Err(err(form));
        };
        let depth: usize = d
            .strip_prefix('r')
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| err(form))?;
        let width: f64 = w
            .strip_suffix('x')
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| err(form))?;
        let sk = match s {
            "sk0" => false,
            "sk1" => true,
            _ => return Err(err(form)),
        };
        let (block, layers) = match depth {
            18 => (BlockKind::Basic, [2, 2, 2, 2]),
            34 => (BlockKind::Basic, [3, 4, 6, 3]),
            50 => (BlockKind::Bottleneck, [3, 4, 6, 3]),
            101 => (BlockKind::Bottleneck, [3, 4, 23, 3]),
            152 => (BlockKind::Bottleneck, [3, 8, 36, 3]),
            200 => (BlockKind::Bottleneck, [3, 24, 36, 3]),
            _ => return Err(err(&format!("depth {depth} is not one of {DEPTHS:?}"))),
        };
        // Multiples of 0.25 keep every channel count (64·w/2 in the ResNet-D stem) whole.
        if !(width > 0.0 && width <= MAX_WIDTH && (width * 4.0).fract() == 0.0) {
            return Err(err(&format!(
                "width {width}x is not a multiple of 0.25x between 0.25x and {MAX_WIDTH}x"
            )));
        }
        Ok(ResNetConfig {
            depth,
            block,
            layers,
            width,
            sk,
            base: 64,
            small_stem: false,
            in_channels: 3,
            sk_ratio: 0.0625,
            sk_min_dim: 32,
            stem_pool_padding: StemPoolPadding::Symmetric,
        })
    }

    pub fn name(&self) -> String {
        if self.depth == 0 {
            format!(
                "custom_{:?}_{}x_sk{}",
                self.layers, self.width, self.sk as u8
            )
        } else {
            format!("r{}_{}x_sk{}", self.depth, self.width, self.sk as u8)
        }
    }

    /// Picks the small-image stem for images of 32 px or less.
    pub fn for_image_size(mut self, size: usize) -> Self {
        self.small_stem = size <= 32;
        self
    }

    pub fn with_stem_pool_padding(mut self, p: StemPoolPadding) -> Self {
        self.stem_pool_padding = p;
        self
    }

    pub fn with_in_channels(mut self, c: usize) -> Self {
        self.in_channels = c;
        self
    }

    pub fn expansion(&self) -> usize {
        match self.block {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }

    /// Channels of the stem's output (64·w).
    pub fn stem_width(&self) -> usize {
        (self.base as f64 * self.width).round() as usize
    }

    /// Width of stage `i` (0-based) before the bottleneck expansion.
    pub fn stage_width(&self, i: usize) -> usize {
        self.stem_width() << i
    }

    /// Width of the representation (2048·w for bottleneck nets).
    pub fn out_dim(&self) -> usize {
        self.stage_width(3) * self.expansion()
    }

    /// Whether the network contains selective-kernel convolutions (sk1 with bottleneck blocks).
    pub fn has_sk_convs(&self) -> bool {
        self.sk && self.block == BlockKind::Bottleneck
    }

    /// What `sk1` means for this depth, for `info` and the run log.
    pub fn sk_note(&self) -> &'static str {
        match (self.sk, self.block) {
            (false, _) => "none",
            (true, BlockKind::Bottleneck) => "selective kernels in every bottleneck block",
            (true, BlockKind::Basic) => {
                "none: basic blocks have no SK conv in the official code; sk1 adds only the ResNet-D stem and shortcuts (use a bottleneck depth, 50+, for SK)"
            }
        }
    }

    /// Channels of the SK attention's bottleneck: max(int(C·ratio), min_dim).
    pub fn sk_mid(&self, c: usize) -> usize {
        ((c as f64 * self.sk_ratio) as usize).max(self.sk_min_dim)
    }
}
