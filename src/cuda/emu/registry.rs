//! Live library objects (handles, descriptors, communicators) of the emulated libraries.
//!
//! An opaque handle is the address of a boxed state that the registry owns; a handle is live
//! while its address is in the registry, so an unknown or destroyed handle is recognised (and
//! refused with the library's status) instead of being dereferenced.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

type Table<T> = Option<HashMap<usize, Box<T>>>;

pub struct Registry<T> {
    live: Mutex<Table<T>>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Registry<T> {
    pub const fn new() -> Self {
        Registry {
            live: Mutex::new(None),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Table<T>>, String> {
        self.live
            .lock()
            .map_err(|_| "the emulated library's object table was poisoned by a panic".into())
    }

    /// Registers `value`; the returned address is its handle.
    pub fn insert(&self, value: T) -> Result<usize, String> {
        let b = Box::new(value);
        let addr = &*b as *const T as usize;
        self.lock()?
            .get_or_insert_with(HashMap::new)
            .insert(addr, b);
        Ok(addr)
    }

    /// Destroys the object at `addr`; `Ok(false)` when there is none.
    pub fn remove(&self, addr: usize) -> Result<bool, String> {
        Ok(self
            .lock()?
            .as_mut()
            .and_then(|m| m.remove(&addr))
            .is_some())
    }

    /// Runs `f` on the live object at `addr`; `Ok(None)` when there is none.
    pub fn with<R>(&self, addr: usize, f: impl FnOnce(&mut T) -> R) -> Result<Option<R>, String> {
        Ok(self
            .lock()?
            .as_mut()
            .and_then(|m| m.get_mut(&addr))
            .map(|b| f(b)))
    }
}
