//! ImageFolder layout: one sub-folder per class (sorted by name gives the label), JPEG and PNG
//! files inside. Headers are checked in parallel at open; pixels are decoded either lazily by
//! whoever asks (the loader's workers, for ImageNet-sized data) or all at once in parallel.

use super::dataset::{ArrayDataset, Dataset, Image};
use crate::{Error, Result};
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// A folder dataset whose images are decoded (to RGB) on every access.
pub struct FolderDataset {
    files: Vec<PathBuf>,
    labels: Vec<usize>,
    class_names: Vec<String>,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !hidden {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Decodes one file to RGB u8, naming the file in any error.
pub fn decode_file(path: &Path) -> Result<Image<'static>> {
    let bad = |msg: String| Error::Data {
        path: path.to_path_buf(),
        msg,
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| bad(format!("cannot decode image: {e}")))?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok(Image {
        height: h,
        width: w,
        channels: 3,
        data: Cow::Owned(img.into_raw()),
    })
}

/// Reads only the header: fails on files that are not a readable JPEG or PNG.
fn check_header(path: &Path) -> Result<()> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let (w, h) = reader.into_dimensions().map_err(|e| Error::Data {
        path: path.to_path_buf(),
        msg: format!("not a readable JPEG/PNG image: {e}"),
    })?;
    if w == 0 || h == 0 {
        return Err(Error::Data {
            path: path.to_path_buf(),
            msg: format!("image has an empty size {w}x{h}"),
        });
    }
    Ok(())
}

impl FolderDataset {
    /// Scans `root/<class>/<image>`; a class folder without images is an error.
    pub fn open(root: &Path) -> Result<Self> {
        let classes: Vec<PathBuf> = list_dir(root)?.into_iter().filter(|p| p.is_dir()).collect();
        if classes.is_empty() {
            return Err(Error::Data {
                path: root.to_path_buf(),
                msg: "no class sub-folders (expected root/<class>/<image>.jpg|png)".into(),
            });
        }
        let (mut files, mut labels, mut class_names) = (Vec::new(), Vec::new(), Vec::new());
        for (label, dir) in classes.iter().enumerate() {
            let imgs: Vec<PathBuf> = list_dir(dir)?
                .into_iter()
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            if imgs.is_empty() {
                return Err(Error::Data {
                    path: dir.clone(),
                    msg: "empty class folder: no .jpg, .jpeg or .png files".into(),
                });
            }
            labels.extend(std::iter::repeat_n(label, imgs.len()));
            files.extend(imgs);
            class_names.push(dir.file_name().unwrap_or_default().to_string_lossy().into());
        }
        files.par_iter().try_for_each(|f| check_header(f))?;
        Ok(FolderDataset {
            files,
            labels,
            class_names,
        })
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Decodes every image in parallel into memory, shrinking each (keeping its aspect) so its
    /// short side is at most `short_side`, then centre-cropping to a square, so all images share
    /// one shape. For small datasets or low-resolution training, where decoding once pays.
    pub fn preload(&self, short_side: usize) -> Result<ArrayDataset> {
        if short_side == 0 {
            return Err(Error::Config("preload short side must be positive".into()));
        }
        let side = short_side;
        let imgs: Vec<Vec<u8>> = self
            .files
            .par_iter()
            .map(|f| {
                let img = decode_file(f)?;
                Ok(super::augment::square_resize_u8(&img, side))
            })
            .collect::<Result<_>>()?;
        let root = self
            .files
            .first()
            .and_then(|f| f.parent()?.parent())
            .unwrap_or(Path::new(""));
        ArrayDataset::new(
            root,
            (side, side, 3),
            imgs.concat(),
            self.labels.clone(),
            self.class_names.clone(),
        )
    }
}

impl Dataset for FolderDataset {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn image(&self, i: usize) -> Result<Image<'_>> {
        let f = self.files.get(i).ok_or_else(|| {
            Error::Config(format!(
                "image index {i} out of range (dataset has {})",
                self.files.len()
            ))
        })?;
        decode_file(f)
    }
    fn label(&self, i: usize) -> usize {
        self.labels[i]
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn channels(&self) -> usize {
        3
    }
}

/// `root/train` and `root/test` (or `root/val`), which must list the same classes.
pub fn open_folder_splits(root: &Path) -> Result<(FolderDataset, FolderDataset)> {
    let train = FolderDataset::open(&root.join("train"))?;
    let test_dir = if root.join("test").is_dir() {
        root.join("test")
    } else if root.join("val").is_dir() {
        root.join("val")
    } else {
        return Err(Error::Data {
            path: root.to_path_buf(),
            msg: "no test/ or val/ sub-folder".into(),
        });
    };
    let test = FolderDataset::open(&test_dir)?;
    if test.class_names != train.class_names {
        return Err(Error::Data {
            path: test_dir,
            msg: format!(
                "class folders {:?} differ from train/'s {:?}",
                test.class_names, train.class_names
            ),
        });
    }
    Ok((train, test))
}
