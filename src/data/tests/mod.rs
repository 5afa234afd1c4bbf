//! Tests of the data layer. Inputs are generated from fresh seeds (printed for replay); files
//! are written into temporary directories.

mod augment;
mod folder;
mod idx_cifar;
mod loader;
mod shard;
mod stream;
mod stream_stats;
mod synthetic;

use crate::Error;

/// Asserts `r` is an `Error::Data` naming a path that ends with `file` and a message containing
/// `what`.
pub(super) fn assert_data_err<T>(r: crate::Result<T>, file: &str, what: &str) {
    match r {
        Err(Error::Data { path, msg }) => {
            assert!(
                path.ends_with(file),
                "error names {} instead of {file} ({msg})",
                path.display()
            );
            assert!(msg.contains(what), "message '{msg}' lacks '{what}'");
        }
        Err(e) => panic!("expected a data error about {file}, got: {e}"),
        Ok(_) => panic!("expected a data error about {file} ({what}), got Ok"),
    }
}
