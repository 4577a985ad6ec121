//! One way to talk on stderr: every line is prefixed with `embtui: `, stripped of escape
//! sequences (file names and captions are untrusted) and, for warnings, counted so that a run
//! can say how many there were.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static WARNINGS: AtomicUsize = AtomicUsize::new(0);
/// Set while the TUI owns the terminal: lines are counted but not written.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Stops (or resumes) writing to stderr; the TUI shows what matters in its status bar.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Writes one sanitised line to stderr; counts it when `warning` is set.
pub fn emit(warning: bool, args: std::fmt::Arguments<'_>) {
    if warning {
        WARNINGS.fetch_add(1, Ordering::Relaxed);
    }
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    let text = crate::text::sanitize(&args.to_string());
    // A closed stderr is no reason to stop a run that is writing its results elsewhere.
    let _ = writeln!(std::io::stderr().lock(), "embtui: {text}");
}

/// Warnings emitted so far by this process.
pub fn count() -> usize {
    WARNINGS.load(Ordering::Relaxed)
}

/// A warning on stderr (a skipped image, a bad caption line, a fallback): counted.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::warn::emit(true, format_args!($($arg)*)) };
}

/// A progress or summary line on stderr: sanitised like a warning, not counted.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::warn::emit(false, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn warnings_are_counted() {
        let before = super::count();
        crate::warn!("a warning about {}", "x.jpg");
        assert!(super::count() > before);
    }
}
