//! How far the GPU's JPEG decode (nvJPEG) may be from the CPU decoder's pixels, shared by the
//! nvJPEG tests and the GPU input tests. The emulated nvJPEG decodes with the CPU decoder, so
//! there the pixels must be equal; a GPU's IDCT and chroma upsampling differ from the CPU
//! decoder's by a few levels.

/// Asserts that `got` (decoded on the device) is the CPU decoder's `want`: exactly on the
/// emulated device, else within a mean difference under 2 levels and none over 64. `what`
/// names the image; `width` (pixels per row, RGB) places a difference in messages.
pub fn assert_decoded_like_cpu(got: &[u8], want: &[u8], width: usize, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    if crate::cuda::driver::is_emulated() {
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            panic!(
                "{what}: byte {i} (row {}, column {}) is {} on the device, {} on the CPU",
                i / (3 * width),
                (i % (3 * width)) / 3,
                got[i],
                want[i]
            );
        }
        return;
    }
    let diffs: Vec<u32> = got
        .iter()
        .zip(want)
        .map(|(&a, &b)| (a as i32 - b as i32).unsigned_abs())
        .collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len().max(1) as f64;
    println!("{what}: max |GPU − CPU| {max}, mean {mean:.3}");
    assert!(mean < 2.0 && max <= 64, "{what}: max {max}, mean {mean}");
}
