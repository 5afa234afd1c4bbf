//! How the ImageNet stem's 3x3/2 max pool pads its input: on every side (ours, PyTorch's) or as
//! TensorFlow's "SAME" (the official SimCLRv2 models), which on an even size pads only after
//! the last row and column. Checkpoints record it under [`StemPoolPadding::KEY`]; one without
//! the key was written before it existed and is symmetric.

use crate::ops::PoolSpec;
use crate::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StemPoolPadding {
    /// One cell on every side (PyTorch's `padding=1`).
    #[default]
    Symmetric,
    /// TF `padding="SAME"`: the total a stride-2 window needs, the odd cell at the end.
    SameTf,
}

impl StemPoolPadding {
    /// The metadata key (and config field) that holds it.
    pub const KEY: &'static str = "stem_pool_padding";
    pub const ALLOWED: [&'static str; 2] = ["symmetric", "same-tf"];

    pub fn name(self) -> &'static str {
        match self {
            StemPoolPadding::Symmetric => Self::ALLOWED[0],
            StemPoolPadding::SameTf => Self::ALLOWED[1],
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::from_name(s).ok_or_else(|| Error::Config(Self::bad_value(s)))
    }

    fn from_name(s: &str) -> Option<Self> {
        [StemPoolPadding::Symmetric, StemPoolPadding::SameTf]
            .into_iter()
            .find(|p| p.name() == s)
    }

    fn bad_value(s: &str) -> String {
        format!(
            "{} is '{s}'; allowed: {}",
            Self::KEY,
            Self::ALLOWED.join(", ")
        )
    }

    /// The stem pool's window for an `h`x`w` input.
    pub fn spec(self, h: usize, w: usize) -> PoolSpec {
        match self {
            StemPoolPadding::Symmetric => PoolSpec::symmetric(3, 2, 1),
            StemPoolPadding::SameTf => PoolSpec::same_tf(h, w, 3, 2),
        }
    }
}

impl Serialize for StemPoolPadding {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for StemPoolPadding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_name(&s).ok_or_else(|| serde::de::Error::custom(Self::bad_value(&s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_values_name_the_key() {
        for p in [StemPoolPadding::Symmetric, StemPoolPadding::SameTf] {
            assert_eq!(StemPoolPadding::parse(p.name()).unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<StemPoolPadding>(&json).unwrap(), p);
        }
        let e = serde_json::from_str::<StemPoolPadding>("\"same\"").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("stem_pool_padding is 'same'"), "{msg}");
        assert!(msg.contains("symmetric, same-tf"), "{msg}");
        let e = StemPoolPadding::parse("valid").unwrap_err().to_string();
        assert!(e.contains("stem_pool_padding is 'valid'"), "{e}");
        // 112 (a 224 px image after the stride-2 stem conv): only after the last row/column.
        let s = StemPoolPadding::SameTf.spec(112, 112);
        assert_eq!((s.pad_h, s.pad_w), ((0, 1), (0, 1)));
        assert_eq!(StemPoolPadding::Symmetric.spec(112, 112).pad_h, (1, 1));
    }
}
