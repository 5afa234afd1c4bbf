//! The side a dataset is stored and trained at when `--image-size` is not given: the built-in
//! dataset's default, and for an image folder or list the short side of its first training
//! image (a preloaded folder is stored as squares of that side), as the help text promises.

use super::stream::{decode::decode_path, listing::Listing};
use crate::Result;
use std::path::Path;

/// The built-in dataset's side: small enough for the default pipeline to pretrain an SK-ResNet
/// on a 2-core CPU in minutes, large enough for its shapes to stay recognisable.
pub const SYNTHETIC_SIZE: usize = 16;

/// The side to generate (synthetic) or preload (folder) at; other datasets have a fixed size
/// and ignore it.
pub fn stored_side(
    dataset: &str,
    data_dir: Option<&Path>,
    requested: Option<usize>,
) -> Result<usize> {
    if let Some(s) = requested {
        return Ok(s);
    }
    match (dataset, data_dir) {
        (kind @ ("folder" | "list"), Some(dir)) => {
            // Only the listing: a folder's other files are not opened.
            let train = if kind == "folder" {
                Listing::folder(&dir.join("train"))?
            } else {
                Listing::list(&dir.join("train.txt"), None)?
            };
            let (h, w) = decode_path(&train.path(0), &|h, w| (h, w))?.full;
            Ok(h.min(w))
        }
        _ => Ok(SYNTHETIC_SIZE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_default_to_their_images_short_side() {
        let dir = tempfile::tempdir().unwrap();
        for split in ["train", "test"] {
            for class in ["a", "b"] {
                let d = dir.path().join(split).join(class);
                std::fs::create_dir_all(&d).unwrap();
                image::RgbImage::from_pixel(48, 40, image::Rgb([10, 200, 30]))
                    .save(d.join("0.png"))
                    .unwrap();
            }
        }
        assert_eq!(stored_side("folder", Some(dir.path()), None).unwrap(), 40);
        assert_eq!(
            stored_side("folder", Some(dir.path()), Some(24)).unwrap(),
            24
        );
        assert_eq!(
            stored_side("synthetic", None, None).unwrap(),
            SYNTHETIC_SIZE
        );
        let spec = crate::data::DatasetSpec {
            name: "folder".into(),
            data_dir: Some(dir.path().to_path_buf()),
            image_size: stored_side("folder", Some(dir.path()), None).unwrap(),
            preload: true,
            ..Default::default()
        };
        let s = crate::data::open_dataset(&spec).unwrap();
        let im = s.train.image(0).unwrap();
        assert_eq!((im.height, im.width), (40, 40));
    }
}
