//! The SimCLRv2 ResNet family: basic and bottleneck blocks, selective kernels, the ResNet-D
//! stem and shortcut when SK is on, zero-initialised last BN of every block, and the
//! small-image stem. Structure follows the authors' TF2 code (see ../shared/SIMCLRV2.md).

use super::{
    join, BatchNorm, BlockKind, Conv2d, Ctx, ResNetConfig, SkConv, StemPoolPadding, Summary,
};
use crate::ops::{self, AvgPoolSpec};
use crate::params::ParamStore;
use crate::{autograd::Var, Result};

/// Projection shortcut of a stage's first block: with ResNet-D a 2x2 average pool at the
/// block's stride (padded at the end as the official code does:
/// [`AvgPoolSpec::resnet_d_shortcut`]) then a stride-1 1x1 conv; without, a strided 1x1 conv.
/// Then BN.
#[derive(Clone, Debug)]
pub struct Shortcut {
    pub pool_stride: Option<usize>,
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl Shortcut {
    fn pool(h: usize, w: usize, stride: usize) -> AvgPoolSpec {
        AvgPoolSpec::resnet_d_shortcut(h, w, stride)
    }

    fn forward(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        let h = match self.pool_stride {
            Some(s) => {
                let (_, h, w, _) = x.value().dims4("shortcut pool")?;
                ops::avg_pool2d(ctx.tape, x, Self::pool(h, w, s))?
            }
            None => x.clone(),
        };
        let h = self.conv.forward(ctx, &h)?;
        self.bn.forward(ctx, &h)
    }
    fn describe(&self, input: &[usize], s: &mut Summary) -> Result<Vec<usize>> {
        let mut shape = input.to_vec();
        if let Some(st) = self.pool_stride {
            let (h, w) = Self::pool(shape[1], shape[2], st)
                .window
                .output_size(shape[1], shape[2])
                .ok_or_else(|| {
                    crate::Error::shape("avg_pool2d", format!("shortcut pool on {shape:?}"))
                })?;
            shape = vec![shape[0], h, w, shape[3]];
        }
        let out = self.conv.describe(&shape, s)?;
        Ok(self.bn.describe(&out, s))
    }
}

/// The middle of a bottleneck block: a selective-kernel conv, or a 3x3 conv + BN (+ ReLU).
#[derive(Clone, Debug)]
pub enum Middle {
    Sk(Box<SkConv>),
    Plain(Conv2d, BatchNorm),
}

#[derive(Clone, Debug)]
pub struct Block {
    pub name: String,
    pub kind: BlockKind,
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub middle: Middle,
    /// Bottleneck only: the expanding 1x1 conv and its zero-gamma BN.
    pub conv3: Option<(Conv2d, BatchNorm)>,
    pub shortcut: Option<Shortcut>,
}

impl Block {
    pub fn new(
        store: &mut ParamStore,
        cfg: &ResNetConfig,
        name: &str,
        cin: usize,
        c: usize,
        stride: usize,
        project: bool,
    ) -> Result<Self> {
        let j = |n| join(name, n);
        let cout = c * cfg.expansion();
        let shortcut = if project {
            let (pool_stride, conv_stride) = if cfg.sk {
                (Some(stride), 1)
            } else {
                (None, stride)
            };
            Some(Shortcut {
                pool_stride,
                conv: Conv2d::new(store, &j("shortcut.conv"), cin, cout, 1, conv_stride)?,
                bn: BatchNorm::new(store, &j("shortcut.bn"), cout, false, true)?,
            })
        } else {
            None
        };
        Ok(match cfg.block {
            BlockKind::Basic => Block {
                name: name.to_string(),
                kind: BlockKind::Basic,
                conv1: Conv2d::new(store, &j("conv1"), cin, c, 3, stride)?,
                bn1: BatchNorm::new(store, &j("bn1"), c, false, true)?,
                middle: Middle::Plain(
                    Conv2d::new(store, &j("conv2"), c, c, 3, 1)?,
                    BatchNorm::new(store, &j("bn2"), c, true, true)?,
                ),
                conv3: None,
                shortcut,
            },
            BlockKind::Bottleneck => {
                let conv1 = Conv2d::new(store, &j("conv1"), cin, c, 1, 1)?;
                let bn1 = BatchNorm::new(store, &j("bn1"), c, false, true)?;
                let middle = if cfg.sk {
                    Middle::Sk(Box::new(SkConv::new(
                        store,
                        &j("sk"),
                        c,
                        c,
                        stride,
                        cfg.sk_mid(c),
                    )?))
                } else {
                    Middle::Plain(
                        Conv2d::new(store, &j("conv2"), c, c, 3, stride)?,
                        BatchNorm::new(store, &j("bn2"), c, false, true)?,
                    )
                };
                let conv3 = Conv2d::new(store, &j("conv3"), c, cout, 1, 1)?;
                let bn3 = BatchNorm::new(store, &j("bn3"), cout, true, true)?;
                Block {
                    name: name.to_string(),
                    kind: BlockKind::Bottleneck,
                    conv1,
                    bn1,
                    middle,
                    conv3: Some((conv3, bn3)),
                    shortcut,
                }
            }
        })
    }

    pub fn forward(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        let _range = crate::profile::layer(&self.name);
        let short = match &self.shortcut {
            Some(s) => s.forward(ctx, x)?,
            None => x.clone(),
        };
        let h = self.conv1.forward(ctx, x)?;
        let h = self.bn1.forward_relu(ctx, &h)?;
        match (&self.middle, &self.conv3) {
            // Basic block: its second BN is the last; the residual sum and ReLU fuse into it.
            (Middle::Plain(conv, bn), None) => {
                let m = conv.forward(ctx, &h)?;
                bn.forward_add_relu(ctx, &m, &short)
            }
            (middle, Some((conv3, bn3))) => {
                let m = match middle {
                    Middle::Sk(sk) => sk.forward(ctx, &h)?,
                    Middle::Plain(conv, bn) => {
                        let m = conv.forward(ctx, &h)?;
                        bn.forward_relu(ctx, &m)?
                    }
                };
                let m = conv3.forward(ctx, &m)?;
                bn3.forward_add_relu(ctx, &m, &short)
            }
            (Middle::Sk(_), None) => Err(crate::Error::Config(format!(
                "{}: an SK conv needs a bottleneck block",
                self.name
            ))),
        }
    }

    fn describe(&self, input: &[usize], s: &mut Summary) -> Result<Vec<usize>> {
        let mut h = self.conv1.describe(input, s)?;
        self.bn1.describe(&h, s);
        h = match &self.middle {
            Middle::Sk(sk) => sk.describe(&h, s)?,
            Middle::Plain(conv, bn) => {
                let m = conv.describe(&h, s)?;
                bn.describe(&m, s)
            }
        };
        if let Some((conv3, bn3)) = &self.conv3 {
            h = conv3.describe(&h, s)?;
            bn3.describe(&h, s);
        }
        if let Some(sc) = &self.shortcut {
            sc.describe(input, s)?;
        }
        Ok(h)
    }
}

/// Convolutions (each followed by BN + ReLU) and an optional 3x3/2 max pool, padded as the
/// config says (symmetric, or TF "SAME" for imported official models).
#[derive(Clone, Debug)]
pub struct Stem {
    pub name: String,
    pub convs: Vec<(Conv2d, BatchNorm)>,
    pub max_pool: Option<StemPoolPadding>,
}

impl Stem {
    fn new(store: &mut ParamStore, cfg: &ResNetConfig, name: &str) -> Result<Self> {
        let w = cfg.stem_width();
        // (in, out, kernel, stride) of each conv.
        let plan: Vec<(usize, usize, usize, usize)> = if cfg.small_stem {
            vec![(cfg.in_channels, w, 3, 1)]
        } else if cfg.sk {
            vec![
                (cfg.in_channels, w / 2, 3, 2),
                (w / 2, w / 2, 3, 1),
                (w / 2, w, 3, 1),
            ]
        } else {
            vec![(cfg.in_channels, w, 7, 2)]
        };
        let convs = plan
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout, k, s))| {
                Ok((
                    Conv2d::new(store, &join(name, &format!("conv{i}")), cin, cout, k, s)?,
                    BatchNorm::new(store, &join(name, &format!("bn{i}")), cout, false, true)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Stem {
            name: name.to_string(),
            convs,
            max_pool: (!cfg.small_stem).then_some(cfg.stem_pool_padding),
        })
    }

    fn forward(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        let _range = crate::profile::layer(&self.name);
        let mut h = x.clone();
        for (conv, bn) in &self.convs {
            h = conv.forward(ctx, &h)?;
            h = bn.forward_relu(ctx, &h)?;
        }
        if let Some(pad) = self.max_pool {
            let (_, ih, iw, _) = h.value().dims4("stem max pool")?;
            h = ops::max_pool2d(ctx.tape, &h, pad.spec(ih, iw))?;
        }
        Ok(h)
    }

    fn describe(&self, input: &[usize], s: &mut Summary) -> Result<Vec<usize>> {
        let mut h = input.to_vec();
        for (conv, bn) in &self.convs {
            h = conv.describe(&h, s)?;
            h = bn.describe(&h, s);
        }
        if let Some(pad) = self.max_pool {
            let (ho, wo) = pad
                .spec(h[1], h[2])
                .output_size(h[1], h[2])
                .ok_or_else(|| {
                    crate::Error::shape(
                        "max_pool2d",
                        format!("stem pool does not fit {}x{}", h[1], h[2]),
                    )
                })?;
            h = vec![h[0], ho, wo, h[3]];
            s.push(&join(&self.name, "max_pool"), "max_pool", &h, 0, 0);
        }
        Ok(h)
    }
}

/// The encoder: stem, four stages, global average pool → [N, out_dim].
#[derive(Clone, Debug)]
pub struct ResNet {
    pub config: ResNetConfig,
    pub name: String,
    pub stem: Stem,
    pub stages: Vec<Vec<Block>>,
}

impl ResNet {
    /// Registers every parameter under `name` (e.g. "encoder") in `store`.
    pub fn new(store: &mut ParamStore, name: &str, config: &ResNetConfig) -> Result<Self> {
        let stem = Stem::new(store, config, &join(name, "stem"))?;
        let mut cin = config.stem_width();
        let mut stages = Vec::with_capacity(4);
        for (i, &blocks) in config.layers.iter().enumerate() {
            let c = config.stage_width(i);
            let stride = if i == 0 { 1 } else { 2 };
            let mut stage = Vec::with_capacity(blocks);
            for b in 0..blocks {
                let bname = join(name, &format!("layer{}.{b}", i + 1));
                // As in the TF2 code, every stage's first block has a projection shortcut.
                let (s, project) = if b == 0 { (stride, true) } else { (1, false) };
                stage.push(Block::new(store, config, &bname, cin, c, s, project)?);
                cin = c * config.expansion();
            }
            stages.push(stage);
        }
        Ok(ResNet {
            config: config.clone(),
            name: name.to_string(),
            stem,
            stages,
        })
    }

    pub fn out_dim(&self) -> usize {
        self.config.out_dim()
    }

    /// NHWC images → representations [N, out_dim].
    pub fn forward(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        let _range = crate::profile::layer(&self.name);
        let c = x.shape().get(3).copied().unwrap_or(0);
        if x.shape().len() != 4 || c != self.config.in_channels {
            return Err(crate::Error::shape(
                "resnet",
                format!(
                    "{} expects NHWC images with {} channels, got {:?}",
                    self.config.name(),
                    self.config.in_channels,
                    x.shape()
                ),
            ));
        }
        let x = ctx.to_compute(x)?;
        let mut h = self.stem.forward(ctx, &x)?;
        for stage in &self.stages {
            for block in stage {
                h = block.forward(ctx, &h)?;
            }
        }
        ops::global_avg_pool(ctx.tape, &h)
    }

    /// Layer table for images of `size`×`size` (batch 1), from shapes alone.
    pub fn describe(&self, size: usize) -> Result<Summary> {
        let mut s = Summary::default();
        let mut h = self
            .stem
            .describe(&[1, size, size, self.config.in_channels], &mut s)?;
        for stage in &self.stages {
            for block in stage {
                h = block.describe(&h, &mut s)?;
            }
        }
        s.push(
            &join(&self.name, "global_pool"),
            "avg_pool",
            &[1, h[3]],
            0,
            0,
        );
        Ok(s)
    }
}
