//! Log lines for what a stranger can cause at will (a refused push, a refused OAuth
//! request, a wrong secret): the first [`FIRST`] of each kind in a minute are logged,
//! the rest only counted, and one summary line a minute says how many were left out.
//! Without it, one connection sending refused requests wrote megabytes of log a second.
//! The metrics count every refusal; this bounds only the log.
//!
//! The events left out are still emitted, under the target [`TARGET`], which the log
//! formatter drops (`cli::ops::init_logging`) and the console's problem list counts:
//! its entry for them keeps the newest details and a true count.

use std::sync::Mutex;

/// The target of the events left out of the log.
pub const TARGET: &str = "wxgate::sampled";

/// Lines of one kind logged a minute before the rest are only counted.
pub const FIRST: u32 = 10;

/// (kind, unix minute, events of that kind in that minute).
static KINDS: Mutex<Vec<(&'static str, i64, u32)>> = Mutex::new(Vec::new());

fn minute() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 / 60)
}

fn summarize(kind: &'static str, seen: u32) {
    if seen > FIRST {
        tracing::warn!(
            kind,
            left_out = seen - FIRST,
            "more refusals of this kind in the last minute were not logged (the metrics count them)"
        );
    }
}

/// Whether this event of `kind` is logged: `true` for the first [`FIRST`] a minute.
pub fn admit(kind: &'static str) -> bool {
    admit_at(kind, minute())
}

fn admit_at(kind: &'static str, now: i64) -> bool {
    let Ok(mut kinds) = KINDS.lock() else {
        return false;
    };
    let i = match kinds.iter().position(|(k, _, _)| *k == kind) {
        Some(i) => i,
        None => {
            kinds.push((kind, now, 0));
            kinds.len() - 1
        }
    };
    let entry = &mut kinds[i];
    if entry.1 != now {
        summarize(kind, entry.2);
        *entry = (kind, now, 0);
    }
    entry.2 = entry.2.saturating_add(1);
    entry.2 <= FIRST
}

/// Writes the summary of every kind whose minute has passed (the upkeep calls it, so a
/// burst that stopped is still summed up).
pub fn flush() {
    let now = minute();
    if let Ok(mut kinds) = KINDS.lock() {
        for entry in kinds.iter_mut().filter(|e| e.1 != now) {
            summarize(entry.0, entry.2);
            entry.2 = 0;
            entry.1 = now;
        }
    }
}

/// `tracing::warn!` for the first [`FIRST`] events of `kind` a minute.
#[macro_export]
macro_rules! sampled_warn {
    ($kind:literal, $($arg:tt)+) => {
        if $crate::sampled::admit($kind) {
            ::tracing::warn!($($arg)+);
        } else {
            ::tracing::warn!(target: "wxgate::sampled", $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_a_minute_are_logged_then_none_until_the_next() {
        let logged = (0..50).filter(|_| admit_at("test-kind", 7)).count();
        assert_eq!(logged, FIRST as usize);
        assert!(admit_at("test-kind", 8), "a new minute logs again");
        assert!(admit_at("other-kind", 7), "each kind has its own count");
    }
}
