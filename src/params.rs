//! Named parameters and buffers of a model, with their gradients.
//!
//! Names follow the module path (`encoder.layer1.0.conv1.weight`) and are the checkpoint's
//! tensor names. A store can be *meta* (shapes only, nothing allocated), which lets us count the
//! parameters of a 795 M-parameter model without touching its weights.

use crate::{DType, Device, Error, Result, Rng, Tensor};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(pub usize);

/// What a tensor is, which decides how the optimizer treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Weight,
    Bias,
    BnGamma,
    BnBeta,
    /// Not trained: BN running statistics.
    BnRunningMean,
    BnRunningVar,
}

impl ParamKind {
    pub fn trainable(self) -> bool {
        !matches!(self, ParamKind::BnRunningMean | ParamKind::BnRunningVar)
    }
    /// LARS and weight decay skip biases and BN parameters (SimCLRv2).
    pub fn excluded_from_lars(self) -> bool {
        matches!(
            self,
            ParamKind::Bias | ParamKind::BnGamma | ParamKind::BnBeta
        )
    }
}

/// How a new parameter is filled.
#[derive(Clone, Copy, Debug)]
pub enum Init {
    Zeros,
    Ones,
    Normal { std: f64 },
    Uniform { bound: f64 },
}

#[derive(Clone, Debug)]
pub struct ParamEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub kind: ParamKind,
    pub value: Option<Tensor>,
    pub grad: Option<Tensor>,
}

pub struct ParamStore {
    entries: Vec<ParamEntry>,
    index: HashMap<String, ParamId>,
    allocate: bool,
    dtype: DType,
    rng: Rng,
}

impl ParamStore {
    /// A store that allocates and initialises parameters (on the CPU, f32 or f64) from `seed`.
    pub fn new(dtype: DType, seed: u64) -> Self {
        ParamStore {
            entries: Vec::new(),
            index: HashMap::new(),
            allocate: true,
            dtype,
            rng: Rng::new(seed),
        }
    }

    /// A store that records names and shapes only.
    pub fn meta() -> Self {
        ParamStore {
            allocate: false,
            ..ParamStore::new(DType::F32, 0)
        }
    }

    pub fn is_meta(&self) -> bool {
        !self.allocate
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn add(
        &mut self,
        name: &str,
        shape: &[usize],
        kind: ParamKind,
        init: Init,
    ) -> Result<ParamId> {
        if self.index.contains_key(name) {
            return Err(Error::Config(format!("parameter '{name}' defined twice")));
        }
        let value = if self.allocate {
            let n: usize = shape.iter().product();
            let data: Vec<f64> = match init {
                Init::Zeros => vec![0.0; n],
                Init::Ones => vec![1.0; n],
                Init::Normal { std } => (0..n).map(|_| self.rng.normal() * std).collect(),
                Init::Uniform { bound } => (0..n).map(|_| self.rng.range(-bound, bound)).collect(),
            };
            Some(Tensor::from_f64(&data, shape, self.dtype)?)
        } else {
            None
        };
        let id = ParamId(self.entries.len());
        self.entries.push(ParamEntry {
            name: name.to_string(),
            shape: shape.to_vec(),
            kind,
            value,
            grad: None,
        });
        self.index.insert(name.to_string(), id);
        Ok(id)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn ids(&self) -> impl Iterator<Item = ParamId> {
        (0..self.entries.len()).map(ParamId)
    }
    pub fn entry(&self, id: ParamId) -> &ParamEntry {
        &self.entries[id.0]
    }
    pub fn entries(&self) -> &[ParamEntry] {
        &self.entries
    }
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.index.get(name).copied()
    }
    pub fn name(&self, id: ParamId) -> &str {
        &self.entries[id.0].name
    }
    pub fn kind(&self, id: ParamId) -> ParamKind {
        self.entries[id.0].kind
    }
    pub fn is_trainable(&self, id: ParamId) -> bool {
        self.entries[id.0].kind.trainable()
    }

    pub fn value(&self, id: ParamId) -> Result<&Tensor> {
        let e = &self.entries[id.0];
        e.value.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "parameter '{}' is not allocated (meta store)",
                e.name
            ))
        })
    }

    /// The value for an in-place update (an optimizer that writes weights where they are).
    pub fn value_mut(&mut self, id: ParamId) -> Result<&mut Tensor> {
        let e = &mut self.entries[id.0];
        let name = &e.name;
        e.value.as_mut().ok_or_else(|| {
            Error::Config(format!("parameter '{name}' is not allocated (meta store)"))
        })
    }

    pub fn set_value(&mut self, id: ParamId, t: Tensor) -> Result<()> {
        let e = &mut self.entries[id.0];
        if t.shape() != e.shape.as_slice() {
            return Err(Error::shape(
                "set_value",
                format!(
                    "parameter '{}' has shape {:?}, got {:?}",
                    e.name,
                    e.shape,
                    t.shape()
                ),
            ));
        }
        // A captured step (CUDA graph) reads the old value's address on every replay: the new
        // value goes there.
        #[cfg(feature = "cuda")]
        if crate::cuda::driver::graph::capturing() {
            if let Some(old) = &e.value {
                if crate::cuda::overwrite(old, &t)? {
                    return Ok(());
                }
            }
        }
        e.value = Some(t);
        Ok(())
    }

    pub fn grad(&self, id: ParamId) -> Option<&Tensor> {
        self.entries[id.0].grad.as_ref()
    }

    pub fn accumulate_grad(&mut self, id: ParamId, g: &Tensor) -> Result<()> {
        let e = &mut self.entries[id.0];
        if g.shape() != e.shape.as_slice() {
            return Err(Error::shape(
                "accumulate_grad",
                format!(
                    "gradient of shape {:?} for parameter '{}' of shape {:?}",
                    g.shape(),
                    e.name,
                    e.shape
                ),
            ));
        }
        e.grad = Some(match e.grad.take() {
            Some(prev) => crate::ops::elementwise::add_forward(&prev, g)?,
            None => g.clone(),
        });
        Ok(())
    }

    /// Replaces parameter `id`'s gradient (the sum over ranks of data parallelism).
    pub fn set_grad(&mut self, id: ParamId, g: Tensor) -> Result<()> {
        let e = &mut self.entries[id.0];
        if g.shape() != e.shape.as_slice() {
            return Err(Error::shape(
                "set_grad",
                format!(
                    "gradient of shape {:?} for parameter '{}' of shape {:?}",
                    g.shape(),
                    e.name,
                    e.shape
                ),
            ));
        }
        e.grad = Some(g);
        Ok(())
    }

    pub fn zero_grads(&mut self) {
        for e in &mut self.entries {
            e.grad = None;
        }
    }

    /// Number of trainable scalars (the paper's parameter count excludes BN running statistics).
    pub fn num_trainable(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.kind.trainable())
            .map(|e| e.shape.iter().product::<usize>())
            .sum()
    }

    /// Moves every allocated tensor to `device` and `dtype`.
    pub fn to(&mut self, device: Device, dtype: DType) -> Result<()> {
        for e in &mut self.entries {
            if let Some(v) = &e.value {
                e.value = Some(v.to_dtype(dtype)?.to_device(device)?);
            }
            e.grad = None;
        }
        self.dtype = dtype;
        Ok(())
    }
}
