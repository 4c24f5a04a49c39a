//! Marks a stretch of work that waits for the disk (a write in synced
//! durability waits for its fsync), so that the thread pool serving
//! connections can let another thread poll meanwhile. A leaf module: the
//! pool installs a hook in each of its threads; elsewhere (a test calling
//! the executor directly) a section just runs its work.

use std::cell::RefCell;
use std::sync::Arc;

/// What a pool does when one of its threads enters (`true`) or leaves
/// (`false`) a waiting section.
pub(crate) type Hook = Arc<dyn Fn(bool) + Send + Sync>;

thread_local! {
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Installs `hook` for the calling thread.
pub(crate) fn install(hook: Hook) {
    HOOK.with(|h| *h.borrow_mut() = Some(hook));
}

/// Removes the calling thread's hook.
pub(crate) fn uninstall() {
    HOOK.with(|h| *h.borrow_mut() = None);
}

/// Runs `work`, which may wait for the disk, telling the calling thread's
/// pool before and after.
pub(crate) fn section<R>(work: impl FnOnce() -> R) -> R {
    let hook = HOOK.with(|h| h.borrow().clone());
    let Some(hook) = hook else {
        return work();
    };
    // Leaves the section even if `work` panics.
    struct Leave(Hook);
    impl Drop for Leave {
        fn drop(&mut self) {
            (self.0)(false);
        }
    }
    hook(true);
    let _leave = Leave(hook);
    work()
}
