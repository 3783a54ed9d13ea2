//! State key layout. The host prefixes every key with the plugin's name (`<plugin>:`), so the
//! full key is `<plugin>:<consumer>:<period>:<period start label>`, e.g.
//! `quota:alice:day:20261126`.

use tollgate_sdk::state::push_key_segment;

/// The counter of `consumer` for one period.
pub fn counter(consumer: &str, period: &str, label: &str) -> String {
    let mut key = String::with_capacity(consumer.len() + period.len() + label.len() + 2);
    push_key_segment(&mut key, consumer);
    key.push(':');
    key.push_str(period);
    key.push(':');
    key.push_str(label);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_sdk::state::key_segment as segment;

    #[test]
    fn names_cannot_forge_keys() {
        assert_eq!(counter("alice", "day", "20261126"), "alice:day:20261126");
        assert_eq!(segment("a:day:1"), "a%3Aday%3A1");
        assert_eq!(segment("50%"), "50%25");
        assert_eq!(segment("x\ny"), "x%0Ay");
        assert_ne!(
            counter("a:day:1", "day", "2"),
            counter("a", "day", "1:day:2")
        );
    }
}
