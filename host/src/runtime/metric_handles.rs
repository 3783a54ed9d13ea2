//! Handles of the metric series an instance records, kept in the instance's store: a plugin
//! that counts the same series on every request (`meter`'s usage counters, a denial counter)
//! then pays one hash look-up of what it passed, instead of building the series' name and
//! labels, checking its cap under a lock and looking it up in the registry every time.
//!
//! The key is what the guest passed (name and labels, before they are cleaned up), and it is
//! looked up with borrowed strings ([`MetricHandles::find`], read straight from the guest's
//! memory by `in_place_imports`), so a hit needs no allocation. Only series the plugin was allowed
//! to create are kept (the admission check runs on the first record), and at most
//! [`MAX_HANDLES`] per instance: past that, a record takes the full path as before. The cap
//! also bounds what a plugin choosing colliding names could cost itself.

use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::{DefaultHashBuilder, HashTable};

/// Most series handles one instance keeps.
const MAX_HANDLES: usize = 64;

/// A counter or a histogram of the registry.
#[derive(Clone)]
pub(crate) enum Handle {
    Counter(metrics::Counter),
    Histogram(metrics::Histogram),
}

/// One series as the guest names it, with its handle.
struct Entry {
    histogram: bool,
    name: String,
    labels: Vec<(String, String)>,
    handle: Handle,
}

impl Entry {
    fn is(
        &self,
        histogram: bool,
        name: &str,
        labels: &[(impl AsRef<str>, impl AsRef<str>)],
    ) -> bool {
        self.histogram == histogram
            && self.name == name
            && self.labels.len() == labels.len()
            && self
                .labels
                .iter()
                .zip(labels)
                .all(|((k, v), (key, value))| k == key.as_ref() && v == value.as_ref())
    }
}

/// The handles of one instance.
#[derive(Default)]
pub(crate) struct MetricHandles {
    entries: HashTable<Entry>,
    hasher: DefaultHashBuilder,
}

impl MetricHandles {
    /// The kept handle of the series `name` + `labels`, if there is one.
    pub(crate) fn find(
        &self,
        histogram: bool,
        name: &str,
        labels: &[(impl AsRef<str>, impl AsRef<str>)],
    ) -> Option<&Handle> {
        let hash = hash_series(&self.hasher, histogram, name, labels);
        self.entries
            .find(hash, |e| e.is(histogram, name, labels))
            .map(|e| &e.handle)
    }

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
        let hash = hash_series(&self.hasher, histogram, &name, &labels);
        if let Some(e) = self.entries.find(hash, |e| e.is(histogram, &name, &labels)) {
            return Some(e.handle.clone());
        }
        let handle = make(&name, &labels)?;
        if self.entries.len() < MAX_HANDLES {
            let entry = Entry {
                histogram,
                name,
                labels,
                handle: handle.clone(),
            };
            let hasher = &self.hasher;
            self.entries.insert_unique(hash, entry, |e| {
                hash_series(hasher, e.histogram, &e.name, &e.labels)
            });
        }
        Some(handle)
    }
}

/// One hash for a series, whether its strings are owned or borrowed.
fn hash_series(
    hasher: &DefaultHashBuilder,
    histogram: bool,
    name: &str,
    labels: &[(impl AsRef<str>, impl AsRef<str>)],
) -> u64 {
    let mut h = hasher.build_hasher();
    histogram.hash(&mut h);
    name.hash(&mut h);
    for (key, value) in labels {
        key.as_ref().hash(&mut h);
        value.as_ref().hash(&mut h);
    }
    h.finish()
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
    fn borrowed_strings_find_what_owned_ones_made() {
        let mut handles = MetricHandles::default();
        handles.get_or_make(false, "hits".into(), labels("a"), |_, _| {
            Some(Handle::Counter(metrics::Counter::noop()))
        });
        assert!(handles.find(false, "hits", &[("route", "a")]).is_some());
        assert!(handles.find(true, "hits", &[("route", "a")]).is_none());
        assert!(handles.find(false, "hits", &[("route", "b")]).is_none());
        assert!(
            handles
                .find(false, "hits", &[] as &[(&str, &str)])
                .is_none()
        );
        let two = [("route", "a"), ("x", "y")];
        assert!(handles.find(false, "hits", &two).is_none());
    }

    #[test]
    fn at_most_max_handles_are_kept() {
        let mut handles = MetricHandles::default();
        for i in 0..MAX_HANDLES + 10 {
            handles.get_or_make(false, format!("m{i}"), Vec::new(), |_, _| {
                Some(Handle::Counter(metrics::Counter::noop()))
            });
        }
        assert_eq!(handles.entries.len(), MAX_HANDLES);
    }
}
