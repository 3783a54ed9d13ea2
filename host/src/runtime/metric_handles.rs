//! Handles of the metric series an instance records, kept in the instance's store: a plugin
//! that counts the same series on every request (`meter`'s usage counters, a denial counter)
//! then pays one hash look-up of what it passed, instead of building the series' name and
//! labels, checking its cap under a lock and looking it up in the registry every time.
//!
//! The key is what the guest passed (name and labels, before they are cleaned up), so a hit
//! needs no allocation. Only series the plugin was allowed to create are kept (the admission
//! check runs on the first record), and at most [`MAX_HANDLES`] per instance: past that, a
//! record takes the full path as before.

use std::collections::HashMap;

/// Most series handles one instance keeps.
const MAX_HANDLES: usize = 64;

/// A counter or a histogram of the registry.
#[derive(Clone)]
pub(crate) enum Handle {
    Counter(metrics::Counter),
    Histogram(metrics::Histogram),
}

/// One series as the guest names it.
#[derive(Hash, PartialEq, Eq)]
struct SeriesKey {
    histogram: bool,
    name: String,
    labels: Vec<(String, String)>,
}

/// The handles of one instance.
#[derive(Default)]
pub(crate) struct MetricHandles {
    handles: HashMap<SeriesKey, Handle>,
}

impl MetricHandles {
    /// The handle of the series `name` + `labels`: the kept one, or the one `make` returns
    /// (kept while there is room). `make` answers `None` when the series is refused (over the
    /// plugin's cap); nothing is kept then.
    pub(crate) fn get_or_make(
        &mut self,
        histogram: bool,
        name: String,
        labels: Vec<(String, String)>,
        make: impl FnOnce(&str, &[(String, String)]) -> Option<Handle>,
    ) -> Option<Handle> {
        let key = SeriesKey {
            histogram,
            name,
            labels,
        };
        if let Some(handle) = self.handles.get(&key) {
            return Some(handle.clone());
        }
        let handle = make(&key.name, &key.labels)?;
        if self.handles.len() < MAX_HANDLES {
            self.handles.insert(key, handle.clone());
        }
        Some(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &str) -> Vec<(String, String)> {
        vec![("route".to_owned(), v.to_owned())]
    }

    #[test]
    fn a_series_is_made_once_and_refusals_are_not_kept() {
        let mut handles = MetricHandles::default();
        let mut made = 0;
        for _ in 0..3 {
            let got = handles.get_or_make(false, "hits".into(), labels("a"), |_, _| {
                made += 1;
                Some(Handle::Counter(metrics::Counter::noop()))
            });
            assert!(got.is_some());
        }
        assert_eq!(made, 1);
        // A histogram of the same name is another series.
        handles.get_or_make(true, "hits".into(), labels("a"), |_, _| {
            made += 1;
            Some(Handle::Histogram(metrics::Histogram::noop()))
        });
        assert_eq!(made, 2);
        for _ in 0..2 {
            let got = handles.get_or_make(false, "hits".into(), labels("b"), |_, _| {
                made += 1;
                None
            });
            assert!(got.is_none());
        }
        assert_eq!(made, 4, "a refused series is asked about again");
    }

    #[test]
    fn at_most_max_handles_are_kept() {
        let mut handles = MetricHandles::default();
        for i in 0..MAX_HANDLES + 10 {
            handles.get_or_make(false, format!("m{i}"), Vec::new(), |_, _| {
                Some(Handle::Counter(metrics::Counter::noop()))
            });
        }
        assert_eq!(handles.handles.len(), MAX_HANDLES);
    }
}
