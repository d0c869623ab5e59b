//! A work function for Raven jobs (the ABI of `ravproto::work`, version 1): squares its slice,
//! an f64 in little-endian bytes, and reports progress and a console line.
//!
//! Nothing here imports WASI: the module's only imports are the host's `rav` functions, so the
//! sandbox accepts it. A panic aborts, which the sandbox reports as a trap of that slice.

#[link(wasm_import_module = "rav")]
unsafe extern "C" {
    #[link_name = "result"]
    fn rav_result(ptr: *const u8, len: usize);
    #[link_name = "error"]
    fn rav_error(ptr: *const u8, len: usize);
    #[link_name = "progress"]
    fn rav_progress(fraction: f32);
    #[link_name = "console"]
    fn rav_console(level: i32, ptr: *const u8, len: usize);
}

/// The allocator the host copies the slice and the args through. The memory is never freed:
/// every slice runs in a fresh instance.
#[unsafe(no_mangle)]
pub extern "C" fn rav_alloc(len: usize) -> *mut u8 {
    let mut buffer = Vec::<u8>::with_capacity(len);
    let ptr = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    ptr
}

fn fail(why: &str) -> i32 {
    // SAFETY: the pointer and length are a live &str's.
    unsafe { rav_error(why.as_ptr(), why.len()) };
    1
}

/// The entry: `(slice_ptr, slice_len, args_ptr, args_len, index) -> 0 | error`.
#[unsafe(no_mangle)]
pub extern "C" fn work(slice: *const u8, slice_len: usize, _args: *const u8, _args_len: usize, index: i64) -> i32 {
    // SAFETY: the host wrote `slice_len` bytes at `slice`, which rav_alloc handed out.
    let bytes = unsafe { std::slice::from_raw_parts(slice, slice_len) };
    let Ok(bytes) = <[u8; 8]>::try_from(bytes) else {
        return fail("a slice is one f64 (8 bytes, little-endian)");
    };
    let x = f64::from_le_bytes(bytes);
    let line = format!("slice {index}: squaring {x}");
    // SAFETY: live buffers, as above.
    unsafe {
        rav_console(0, line.as_ptr(), line.len());
        rav_progress(1.0);
        let out = (x * x).to_le_bytes();
        rav_result(out.as_ptr(), out.len());
    }
    0
}
