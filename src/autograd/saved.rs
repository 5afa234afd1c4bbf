//! What an op keeps for its backward: the tensor itself, or a recipe that recomputes it.
//!
//! With recomputation on ([`super::Tape::set_recompute`]), the output of a fused BN + ReLU is
//! not kept alive by the ops that read it (the next convolution, the SK mix): their backward
//! recomputes it from the BN's input, which the BN keeps anyway. That halves the tensors held
//! per conv → BN → ReLU → conv chain, for one extra BN-apply pass in backward. The recomputed
//! tensor is cached between its first use and the producer's own backward (always the last
//! reader, since it ran first in forward), so each is recomputed once per backward.

use crate::{Result, Tensor};
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// A recipe for a tensor, with a cache of its last result.
pub struct Recompute {
    f: Box<dyn Fn() -> Result<Tensor>>,
    cache: RefCell<Option<Tensor>>,
}

impl Recompute {
    pub fn new(f: impl Fn() -> Result<Tensor> + 'static) -> Rc<Self> {
        Rc::new(Recompute {
            f: Box::new(f),
            cache: RefCell::new(None),
        })
    }

    /// The tensor, recomputed on first use and cached.
    pub fn get(&self) -> Result<Tensor> {
        if let Some(t) = self.cache.borrow().as_ref() {
            return Ok(t.clone());
        }
        let t = (self.f)()?;
        *self.cache.borrow_mut() = Some(t.clone());
        Ok(t)
    }

    /// The tensor, for its last reader: the cache is emptied.
    pub fn take(&self) -> Result<Tensor> {
        match self.cache.borrow_mut().take() {
            Some(t) => Ok(t),
            None => (self.f)(),
        }
    }
}

impl fmt::Debug for Recompute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recompute(cached: {})", self.cache.borrow().is_some())
    }
}

/// A tensor an op keeps for its backward.
#[derive(Clone, Debug)]
pub enum Saved {
    Value(Tensor),
    Recompute(Rc<Recompute>),
}

impl Saved {
    pub fn get(&self) -> Result<Tensor> {
        match self {
            Saved::Value(t) => Ok(t.clone()),
            Saved::Recompute(r) => r.get(),
        }
    }
}
