//! The caches keyed by fingerprints (validated tokens, opened cookie sessions): a bounded moka
//! cache with its own expiry, behind a small direct-mapped memory of the entries used last.
//!
//! A client sends the same token or `Cookie` header on every request; a moka lookup does its
//! eviction bookkeeping (a frequency sketch, a read log, a clock read) on every hit, about a
//! fifth of what authenticating such a request costs. [`RecentEntries`] keeps the last entry
//! seen in each of a fixed number of slots, chosen by the fingerprint's bits: a hit there costs
//! one uncontended lock and one comparison. Neither decides anything: whoever reads an entry
//! checks it (its end on the clock in use, revocation), and invalidating removes it from both.

use std::sync::{Mutex, PoisonError};

use moka::Expiry;

use crate::fingerprint::Fingerprint;

/// A cache of at most `capacity` entries keyed by fingerprints, the most recently used in front.
pub(crate) struct FingerprintCache<V> {
    recent: RecentEntries<V>,
    cache: moka::sync::Cache<Fingerprint, V>,
}

impl<V: Clone + Send + Sync + 'static> FingerprintCache<V> {
    /// A cache of `capacity` entries, each dropped when `expiry` says, with `recent_slots` of
    /// them in front.
    pub(crate) fn new(
        capacity: u64,
        recent_slots: usize,
        expiry: impl Expiry<Fingerprint, V> + Send + Sync + 'static,
    ) -> FingerprintCache<V> {
        FingerprintCache {
            recent: RecentEntries::new(recent_slots),
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(expiry)
                .build(),
        }
    }

    /// The entry for `key`, from the front if it is there.
    pub(crate) fn get(&self, key: &Fingerprint) -> Option<V> {
        if let Some(value) = self.recent.get(key) {
            return Some(value);
        }
        let value = self.cache.get(key)?;
        self.recent.put(*key, value.clone());
        Some(value)
    }

    /// Keeps `value` for `key`.
    pub(crate) fn insert(&self, key: Fingerprint, value: V) {
        self.recent.put(key, value.clone());
        self.cache.insert(key, value);
    }

    /// Forgets `key`'s entry.
    pub(crate) fn invalidate(&self, key: &Fingerprint) {
        self.recent.remove(key);
        self.cache.invalidate(key);
    }
}

/// At most `slots` entries, one per slot; a newer entry for a slot replaces the older.
struct RecentEntries<V> {
    slots: Box<[Slot<V>]>,
}

/// One entry at most, with its key.
type Slot<V> = Mutex<Option<(Fingerprint, V)>>;

impl<V: Clone> RecentEntries<V> {
    /// A memory of `slots` entries (rounded up to a power of two, at least one).
    fn new(slots: usize) -> RecentEntries<V> {
        let slots = slots.max(1).next_power_of_two();
        RecentEntries {
            slots: (0..slots).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The entry for `key`, if it is the one its slot holds.
    fn get(&self, key: &Fingerprint) -> Option<V> {
        let slot = self
            .slot(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Some((held, value)) if held == key => Some(value.clone()),
            _ => None,
        }
    }

    /// Keeps `value` for `key`, replacing whatever its slot held.
    fn put(&self, key: Fingerprint, value: V) {
        *self
            .slot(&key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((key, value));
    }

    /// Forgets `key`'s entry, if its slot holds it.
    fn remove(&self, key: &Fingerprint) {
        let mut slot = self
            .slot(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|(held, _)| held == key) {
            *slot = None;
        }
    }

    fn slot(&self, key: &Fingerprint) -> &Slot<V> {
        // A fingerprint is keyed and uniform: its first bytes pick the slot as well as any hash.
        let mut word = [0u8; 8];
        word.copy_from_slice(&key[..8]);
        let index = (u64::from_le_bytes(word) as usize) & (self.slots.len() - 1);
        &self.slots[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(first: u8, last: u8) -> Fingerprint {
        let mut key = [0u8; 16];
        key[0] = first;
        key[15] = last;
        key
    }

    #[test]
    fn an_entry_is_found_until_its_slot_is_taken_or_it_is_removed() {
        let recent = RecentEntries::new(4);
        recent.put(key(1, 0), "one");
        assert_eq!(recent.get(&key(1, 0)), Some("one"));
        // Same slot (the first bytes agree), another fingerprint: not confused with the first.
        assert_eq!(recent.get(&key(1, 9)), None);
        recent.put(key(1, 9), "other");
        assert_eq!(recent.get(&key(1, 0)), None);
        assert_eq!(recent.get(&key(1, 9)), Some("other"));
        // Removing a fingerprint the slot does not hold leaves the slot alone.
        recent.remove(&key(1, 0));
        assert_eq!(recent.get(&key(1, 9)), Some("other"));
        recent.remove(&key(1, 9));
        assert_eq!(recent.get(&key(1, 9)), None);
    }

    struct Forever;
    impl Expiry<Fingerprint, &'static str> for Forever {}

    #[test]
    fn the_cache_serves_from_either_and_forgets_from_both() {
        let cache = FingerprintCache::new(100, 1, Forever);
        cache.insert(key(1, 0), "one");
        // The one front slot now holds another entry: the first comes from moka, and is moved
        // to the front.
        cache.insert(key(2, 0), "two");
        assert_eq!(cache.recent.get(&key(1, 0)), None);
        assert_eq!(cache.get(&key(1, 0)), Some("one"));
        assert_eq!(cache.recent.get(&key(1, 0)), Some("one"));
        assert_eq!(cache.get(&key(2, 0)), Some("two"));
        cache.invalidate(&key(2, 0));
        assert_eq!(cache.get(&key(2, 0)), None);
        cache.invalidate(&key(1, 0));
        assert_eq!(cache.get(&key(1, 0)), None);
        assert_eq!(cache.recent.get(&key(1, 0)), None);
    }

    #[test]
    fn slots_are_independent_and_their_count_a_power_of_two() {
        let recent = RecentEntries::new(3);
        assert_eq!(recent.slots.len(), 4);
        for first in 0..4 {
            recent.put(key(first, first), first);
        }
        for first in 0..4 {
            assert_eq!(recent.get(&key(first, first)), Some(first));
        }
        assert_eq!(RecentEntries::<u8>::new(0).slots.len(), 1);
    }
}
