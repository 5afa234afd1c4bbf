//! Layer-by-layer description of a model: output shapes, parameters, multiply-accumulates.
//! Computed from shapes alone, so it works on meta (unallocated) models of any size.

use crate::ops::conv2d::Geometry;
use std::fmt;

#[derive(Clone, Debug)]
pub struct LayerRow {
    pub name: String,
    pub kind: &'static str,
    pub out_shape: Vec<usize>,
    pub params: usize,
    pub macs: u64,
    /// The sizes of a convolution layer (batch 1).
    pub conv: Option<Geometry>,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub rows: Vec<LayerRow>,
}

impl Summary {
    pub fn push(
        &mut self,
        name: &str,
        kind: &'static str,
        out_shape: &[usize],
        params: usize,
        macs: u64,
    ) {
        self.rows.push(LayerRow {
            name: name.to_string(),
            kind,
            out_shape: out_shape.to_vec(),
            params,
            macs,
            conv: None,
        });
    }
    /// A convolution layer's row, with its sizes.
    pub fn push_conv(&mut self, name: &str, g: &Geometry, params: usize) {
        self.push(name, "conv", &[g.n, g.ho, g.wo, g.cout], params, g.macs());
        if let Some(row) = self.rows.last_mut() {
            row.conv = Some(*g);
        }
    }
    /// Every convolution of the model, in order.
    pub fn convolutions(&self) -> impl Iterator<Item = &Geometry> {
        self.rows.iter().filter_map(|r| r.conv.as_ref())
    }
    pub fn total_params(&self) -> usize {
        self.rows.iter().map(|r| r.params).sum()
    }
    pub fn total_macs(&self) -> u64 {
        self.rows.iter().map(|r| r.macs).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<44} {:<12} {:<20} {:>12} {:>10}",
            "layer", "kind", "output (NHWC)", "params", "MMACs"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<44} {:<12} {:<20} {:>12} {:>10.2}",
                r.name,
                r.kind,
                format!("{:?}", r.out_shape),
                r.params,
                r.macs as f64 / 1e6
            )?;
        }
        Ok(())
    }
}
