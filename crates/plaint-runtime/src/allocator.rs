//! The services' memory allocator: mimalloc, returning freed memory promptly.
//!
//! Under load, glibc's malloc and free took about a twentieth of the router's
//! CPU. mimalloc is cheaper, but by default (version 3) it keeps freed
//! memory for a second before giving it back, which raised the router's peak
//! RSS by about a quarter; the services ask it to give memory back at once.
//!
//! A service binary installs it with
//! `#[global_allocator] static ALLOCATOR: Allocator = Allocator;` and calls
//! [`return_freed_memory_promptly`] first thing in `main`.

/// The allocator type.
pub use mimalloc::MiMalloc as Allocator;

/// `mi_option_purge_delay` in the `mi_option_t` enum of the mimalloc that
/// libmimalloc-sys 0.1.49 builds (pinned in the workspace): the Rust
/// bindings have no constant for it.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc return freed memory to the system without delay, unless
/// `MIMALLOC_PURGE_DELAY` in the environment says otherwise.
#[allow(unsafe_code)]
pub fn return_freed_memory_promptly() {
    // SAFETY: setting an option's default is a plain store into mimalloc's
    // option table, safe at any time and from any thread.
    unsafe { libmimalloc_sys::mi_option_set_default(PURGE_DELAY, 0) };
}

/// The purge delay mimalloc is using now, in milliseconds.
#[allow(unsafe_code)]
pub fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: reading an option is a plain load from mimalloc's option table.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_goes_from_its_default_to_zero_unless_the_environment_sets_it() {
        let from_env: Option<std::ffi::c_long> = std::env::var("MIMALLOC_PURGE_DELAY")
            .ok()
            .and_then(|v| v.parse().ok());
        // 1000 is the default in mimalloc 3's option table (src/options.c):
        // no neighbouring option has it, so a wrong index would show here.
        assert_eq!(purge_delay_ms(), from_env.unwrap_or(1000));
        return_freed_memory_promptly();
        assert_eq!(purge_delay_ms(), from_env.unwrap_or(0));
    }
}
