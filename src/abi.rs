//! The calling-convention shape of the C library functions we call through pointers (nvJPEG's
//! table and Open MPI's, ours; cuDNN, cuBLAS, NCCL and the driver, cudarc's), so that tests can
//! hold each one against the declaration in the library's own header (tests/library_headers.rs,
//! tests/mpi_header.rs). No GPU is needed.
//!
//! A shape is `ret(arg, arg, …)`, each part one of: `void`, `int8`..`int64` (an integer or enum
//! of that width, either sign: the two are passed alike), `f32`, `f64`, `struct<bytes>` (a wider
//! aggregate by value), or a pointer: `ptr<int32>` (to such a scalar: what the callee reads or
//! writes through it), `ptr<ptr>` (to a pointer), or `ptr` (to anything else, or a function).
//! That is what decides how a call passes its arguments on x86-64 and aarch64, and how much
//! the callee writes through an out-pointer: a wrong count, a pointer for a value, a 32-bit
//! integer for a 64-bit one, or an `int *` for a `size_t *` shows.
//!
//! Our side names a pointee's type only when it is a Rust primitive or a pointer (cudarc's enum
//! and struct pointees read as `ptr`); a header's `ptr<…>` meets our `ptr` (see
//! tests/support/header_check.rs).

use std::any::type_name;
use std::mem::size_of;

/// The shape class of one argument or result type.
pub fn class_of<T: 'static>() -> String {
    let name = type_name::<T>();
    let size = size_of::<T>();
    if size == 0 {
        return "void".into();
    }
    // Raw pointers, references, function pointers and Option<fn> (a nullable function pointer).
    let pointer = name.starts_with('*')
        || name.starts_with('&')
        || name.contains("fn(") && size == size_of::<usize>();
    if pointer {
        let pointee = name
            .strip_prefix("*mut ")
            .or_else(|| name.strip_prefix("*const "));
        return match pointee {
            Some(p) if p.starts_with('*') => "ptr<ptr>".into(),
            Some(p) => match primitive(p) {
                Some(c) => format!("ptr<{c}>"),
                None => "ptr".into(),
            },
            None => "ptr".into(),
        };
    }
    match name {
        "f32" => "f32".into(),
        "f64" => "f64".into(),
        _ if size <= 8 && size.is_power_of_two() => format!("int{}", size * 8),
        _ => format!("struct{size}"),
    }
}

/// The class of a Rust primitive scalar type by its name (`None` for any other type).
fn primitive(name: &str) -> Option<&'static str> {
    Some(match name {
        "i8" | "u8" => "int8",
        "i16" | "u16" => "int16",
        "i32" | "u32" => "int32",
        "i64" | "u64" => "int64",
        "isize" | "usize" => match size_of::<usize>() {
            4 => "int32",
            _ => "int64",
        },
        "f32" => "f32",
        "f64" => "f64",
        _ => return None,
    })
}

/// A struct as declared: its C name, its size, and each named field with its offset.
pub type Layout = (&'static str, usize, Vec<(&'static str, usize)>);

/// A function pointer type's shape: `ret(arg, …)`.
pub trait Shape {
    fn shape() -> String;
}

macro_rules! shape_impls {
    () => { shape_impls!(@one); };
    ($first:ident $($rest:ident)*) => {
        shape_impls!(@one $first $($rest)*);
        shape_impls!($($rest)*);
    };
    (@one $($a:ident)*) => {
        impl<R: 'static, $($a: 'static),*> Shape for unsafe extern "C" fn($($a),*) -> R {
            fn shape() -> String {
                let args: Vec<String> = vec![$(class_of::<$a>()),*];
                format!("{}({})", class_of::<R>(), args.join(", "))
            }
        }
        impl<R: 'static, $($a: 'static),*> Shape for unsafe fn($($a),*) -> R {
            fn shape() -> String {
                <unsafe extern "C" fn($($a),*) -> R as Shape>::shape()
            }
        }
    };
}

// Up to 20 arguments (cublasGemmEx has 19).
shape_impls!(A B C D E F G H I J K L M N O P Q S T U);

/// The shape of a function pointer type.
pub fn shape_of<F: Shape>() -> String {
    F::shape()
}

/// The shape of a function (an item or pointer, of a Rust or a C signature), its argument count
/// given: `abi_shape!(sys::cudnnGetVersion, 0)`. The count only spells the cast to a pointer
/// whose types are inferred; a wrong one does not compile.
#[macro_export]
macro_rules! abi_shape {
    (@cast $f:expr; $($u:tt),*) => {
        $crate::abi::shape_of_value($f as unsafe fn($($u),*) -> _)
    };
    ($f:expr, 0) => { $crate::abi_shape!(@cast $f; ) };
    ($f:expr, 1) => { $crate::abi_shape!(@cast $f; _) };
    ($f:expr, 2) => { $crate::abi_shape!(@cast $f; _, _) };
    ($f:expr, 3) => { $crate::abi_shape!(@cast $f; _, _, _) };
    ($f:expr, 4) => { $crate::abi_shape!(@cast $f; _, _, _, _) };
    ($f:expr, 5) => { $crate::abi_shape!(@cast $f; _, _, _, _, _) };
    ($f:expr, 6) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _) };
    ($f:expr, 7) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _) };
    ($f:expr, 8) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _) };
    ($f:expr, 9) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _, _) };
    ($f:expr, 10) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _, _, _) };
    ($f:expr, 11) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _, _, _, _) };
    ($f:expr, 12) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _, _, _, _, _) };
    ($f:expr, 13) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _, _, _, _, _, _) };
    ($f:expr, 14) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _, _, _, _, _, _, _) };
    ($f:expr, 15) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _, _, _, _, _, _, _, _) };
    ($f:expr, 16) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _) };
    ($f:expr, 17) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _) };
    ($f:expr, 18) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _) };
    ($f:expr, 19) => { $crate::abi_shape!(@cast $f; _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _) };
}

/// The shape of a function pointer value (see [`abi_shape!`]).
pub fn shape_of_value<F: Shape>(_: F) -> String {
    F::shape()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::{c_int, c_uint, c_void};

    #[test]
    fn classes_follow_the_calling_convention() {
        assert_eq!(class_of::<c_int>(), "int32");
        assert_eq!(class_of::<c_uint>(), "int32");
        assert_eq!(class_of::<usize>(), "int64");
        assert_eq!(class_of::<u64>(), "int64");
        assert_eq!(class_of::<i8>(), "int8");
        assert_eq!(class_of::<f32>(), "f32");
        assert_eq!(class_of::<f64>(), "f64");
        assert_eq!(class_of::<()>(), "void");
        assert_eq!(class_of::<*mut c_void>(), "ptr");
        assert_eq!(class_of::<*const *const u8>(), "ptr<ptr>");
        assert_eq!(class_of::<*mut c_int>(), "ptr<int32>");
        assert_eq!(class_of::<*const usize>(), "ptr<int64>");
        assert_eq!(class_of::<*mut f32>(), "ptr<f32>");
        assert_eq!(class_of::<*const std::ffi::c_char>(), "ptr<int8>");
        assert_eq!(class_of::<Option<unsafe extern "C" fn(c_int)>>(), "ptr");
        assert_eq!(class_of::<[u8; 24]>(), "struct24");
        assert_eq!(class_of::<[u8; 3]>(), "struct3");
    }

    #[test]
    fn a_function_pointer_type_gives_its_shape() {
        type Decode = unsafe extern "C" fn(*mut c_void, usize, c_int, f32, *mut usize) -> c_int;
        assert_eq!(
            shape_of::<Decode>(),
            "int32(ptr, int64, int32, f32, ptr<int64>)"
        );
        assert_eq!(shape_of::<unsafe extern "C" fn()>(), "void()");
    }

    #[test]
    fn a_rust_function_item_gives_the_shape_of_its_signature() {
        unsafe fn gemm(_h: *mut c_void, _m: c_int, _alpha: *const f32, _n: i64) -> u32 {
            0
        }
        unsafe fn version() -> usize {
            0
        }
        assert_eq!(
            crate::abi_shape!(gemm, 4),
            "int32(ptr, int32, ptr<f32>, int64)"
        );
        assert_eq!(crate::abi_shape!(version, 0), "int64()");
    }
}
