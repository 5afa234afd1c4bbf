//! Knowledge distillation loss of SimCLRv2's third step, fused with its gradient:
//!
//! `L = (1−α)·mean_x CE(softmax(s), y) + α·mean_x [ −Σ_c P_T(c) log P_S(c) ]`,
//! with `P_T = softmax(t/τ)` from the fixed teacher logits t and `P_S = softmax(s/τ)` from the
//! student logits s. This is SIMCLRV2.md's formula taken literally (its `−(1−α)Σ log P_S(y|x)`
//! is the cross-entropy), averaged over the batch:
//! - the labelled cross-entropy uses temperature 1 (the formula writes `P_S(y_i|x_i)`);
//! - the soft term is **not** multiplied by τ² (neither is the paper's). Its gradient w.r.t. s
//!   is therefore `(P_S − P_T)/τ`, which grows as τ shrinks; scale the learning rate instead;
//! - α = 1 is the unlabelled case (labels may be omitted); α < 1 needs a label for every row.
//!
//! The teacher gets no gradient.

pub mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::distill;

use crate::{on_backend, Error, Result, Tensor};

/// What each backend provides for the distillation loss (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait DistillKernels {
    /// Returns (batch-mean loss [], gradient w.r.t. the student logits), in the student's dtype.
    fn distill_forward(
        student: &Tensor,
        teacher: &Tensor,
        labels: Option<&[usize]>,
        spec: DistillSpec,
    ) -> Result<(Tensor, Tensor)>;
}

const OP: &str = "distill";

/// Mixing weight and temperature of the distillation loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DistillSpec {
    /// Weight of the soft (teacher) term; 1 − alpha weighs the labelled cross-entropy.
    pub alpha: f64,
    /// Softmax temperature of teacher and student in the soft term.
    pub tau: f64,
}

impl DistillSpec {
    /// Pure distillation on unlabelled data (α = 1).
    pub fn unlabelled(tau: f64) -> Self {
        DistillSpec { alpha: 1.0, tau }
    }
}

fn check(
    student: &Tensor,
    teacher: &Tensor,
    labels: Option<&[usize]>,
    spec: DistillSpec,
) -> Result<()> {
    let (b, c) = student.dims2(OP)?;
    if b == 0 || c == 0 {
        return Err(Error::shape(
            OP,
            format!("empty student logits {:?}", student.shape()),
        ));
    }
    if teacher.shape() != student.shape() {
        return Err(Error::shape(
            OP,
            format!(
                "teacher logits {:?} for student logits {:?}",
                teacher.shape(),
                student.shape()
            ),
        ));
    }
    if !(spec.tau > 0.0 && spec.tau.is_finite()) {
        return Err(Error::Config(format!(
            "{OP}: temperature must be a finite number > 0, got {}",
            spec.tau
        )));
    }
    if !(0.0..=1.0).contains(&spec.alpha) {
        return Err(Error::Config(format!(
            "{OP}: alpha must lie in [0, 1], got {}",
            spec.alpha
        )));
    }
    match labels {
        None if spec.alpha < 1.0 => Err(Error::Config(format!(
            "{OP}: alpha = {} < 1 weighs a labelled cross-entropy, but no labels were given",
            spec.alpha
        ))),
        Some(l) if l.len() != b => Err(Error::shape(
            OP,
            format!("{} labels for {b} rows of logits", l.len()),
        )),
        Some(l) => match l.iter().enumerate().find(|(_, &y)| y >= c) {
            Some((i, y)) => Err(Error::shape(
                OP,
                format!("label {y} of row {i} is out of range for {c} classes"),
            )),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

/// Returns (batch-mean loss of shape [], gradient w.r.t. the student logits).
pub fn distill_forward(
    student: &Tensor,
    teacher: &Tensor,
    labels: Option<&[usize]>,
    spec: DistillSpec,
) -> Result<(Tensor, Tensor)> {
    check(student, teacher, labels, spec)?;
    on_backend!(OP, [student, teacher], B => B::distill_forward(student, teacher, labels, spec))
}
