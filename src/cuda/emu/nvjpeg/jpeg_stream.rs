//! The emulated nvJPEG's JPEG streams (parsed headers), the batched decode's per-image support
//! query and its pre-allocation.

use super::*;

/// The JPEG stream's header (if parsed) after checking it is live and of handle `h`.
fn stream_of(h: NvjpegHandle, js: NvjpegJpegStream, who: &str) -> Result<Option<Header>> {
    let (owner, header) = STREAMS
        .with(js as usize, |x| (x.handle, x.header.clone()))
        .map_err(internal)?
        .ok_or_else(|| {
            invalid(format!(
                "{who}: JPEG stream {:#x} is not a live nvjpegJpegStream_t (never created, or \
                 destroyed)",
                js as usize
            ))
        })?;
    if owner != h as usize {
        return Err(invalid(format!(
            "{who}: JPEG stream {:#x} was created with handle {owner:#x}, not {:#x}",
            js as usize, h as usize
        )));
    }
    Ok(header)
}

pub fn jpeg_stream_create(h: NvjpegHandle) -> Result<NvjpegJpegStream> {
    backend_of(h, "nvjpegJpegStreamCreate")?;
    let js = JpegStream {
        handle: h as usize,
        header: None,
    };
    Ok(STREAMS.insert(js).map_err(internal)? as NvjpegJpegStream)
}

/// # Safety
/// None beyond the stream's (checked).
pub unsafe fn jpeg_stream_destroy(js: NvjpegJpegStream) -> Result<()> {
    if STREAMS.remove(js as usize).map_err(internal)? {
        Ok(())
    } else {
        Err(invalid(format!(
            "nvjpegJpegStreamDestroy: JPEG stream {:#x} is not a live nvjpegJpegStream_t (never \
             created, or destroyed)",
            js as usize
        )))
    }
}

pub fn jpeg_stream_parse_header(h: NvjpegHandle, data: &[u8], js: NvjpegJpegStream) -> Result<()> {
    let who = "nvjpegJpegStreamParseHeader";
    backend_of(h, who)?;
    stream_of(h, js, who)?;
    let parsed = if data.is_empty() {
        Err(invalid(format!("{who}: data is empty (length 0)")))
    } else {
        parse_header(data).map_err(|e| NvjpegError::new(e.status, format!("{who}: {}", e.detail)))
    };
    // A failed parse leaves no header behind: the next support query cannot answer for the
    // image parsed before.
    let header = parsed.as_ref().ok().cloned();
    STREAMS
        .with(js as usize, |x| x.header = header)
        .map_err(internal)?;
    parsed.map(|_| ())
}

pub fn decode_batched_supported(h: NvjpegHandle, js: NvjpegJpegStream) -> Result<bool> {
    let who = "nvjpegDecodeBatchedSupported";
    let backend = backend_of(h, who)?;
    let header = stream_of(h, js, who)?.ok_or_else(|| {
        invalid(format!(
            "{who}: JPEG stream {:#x} holds no parsed header (nvjpegJpegStreamParseHeader did \
             not succeed on it)",
            js as usize
        ))
    })?;
    Ok(unsupported(&header, backend).is_none())
}

/// # Safety
/// None beyond the handle's and state's (checked).
pub unsafe fn decode_batched_pre_allocate(
    h: NvjpegHandle,
    s: NvjpegState,
    batch_size: i32,
    width: i32,
    height: i32,
    chroma_subsampling: i32,
    output_format: i32,
) -> Result<()> {
    let who = "nvjpegDecodeBatchedPreAllocate";
    let (backend, _) = state_of(h, s, who)?;
    for (name, v) in [
        ("batch_size", batch_size),
        ("width", width),
        ("height", height),
    ] {
        if v < 1 {
            return Err(invalid(format!("{who}: {name} = {v}")));
        }
    }
    if !(CSS_444..=CSS_410V).contains(&chroma_subsampling) {
        return Err(invalid(format!(
            "{who}: chroma subsampling {chroma_subsampling} is not an nvjpegChromaSubsampling_t \
             of a stream ({CSS_444}..={CSS_410V})"
        )));
    }
    if !(0..=OUTPUT_FORMAT_MAX).contains(&output_format) {
        return Err(invalid(format!(
            "{who}: output format {output_format} is not an nvjpegOutputFormat_t \
             (0..={OUTPUT_FORMAT_MAX})"
        )));
    }
    if backend != BACKEND_HARDWARE {
        // The hardware decoder's buffers; nothing to allocate for the other backends.
        return Ok(());
    }
    let bytes = planes_bytes(batch_size, width, height, chroma_subsampling);
    let fresh = crate::cuda::emu::cu::malloc(bytes).map_err(|e| {
        NvjpegError::new(
            STATUS_ALLOCATOR_FAILURE,
            format!(
                "{who}: {bytes} bytes of device memory for {batch_size} images of \
                 {width}x{height}: {e:?}"
            ),
        )
    })?;
    let old = STATES
        .with(s as usize, |x| {
            let calls = x.preallocated.map_or(0, |p| p.calls) + 1;
            x.preallocated = Some(PreAllocation {
                batch_size,
                width,
                height,
                chroma_subsampling,
                output_format,
                calls,
            });
            x.buffers.replace(fresh)
        })
        .map_err(internal)?;
    if let Some(p) = old.flatten() {
        crate::cuda::emu::cu::free(p).map_err(|e| internal(format!("{e:?}")))?;
    }
    Ok(())
}

/// Bytes of the decoded planes of `batch` images of `width` x `height` at subsampling `css`:
/// luma plus two chroma planes, in quarters of a luma byte per pixel.
fn planes_bytes(batch: i32, width: i32, height: i32, css: i32) -> usize {
    let quarters: u64 = match css {
        CSS_444 => 12,
        CSS_422 | CSS_440 => 8,
        CSS_420 | CSS_411 => 6,
        CSS_GRAY => 4,
        _ => 5, // 4:1:0 and 4:1:0V
    };
    let pixels = batch as u64 * width as u64 * height as u64;
    usize::try_from((pixels * quarters).div_ceil(4)).unwrap_or(usize::MAX)
}

/// What nvjpegDecodeBatchedPreAllocate recorded for state `s` (HARDWARE backend), if anything:
/// for tests of the callers.
pub fn preallocation(s: NvjpegState) -> Option<PreAllocation> {
    STATES
        .with(s as usize, |x| x.preallocated)
        .ok()
        .flatten()
        .flatten()
}
