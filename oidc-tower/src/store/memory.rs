//! An in-process store: bounded, expiring, for a single replica and for tests.
//!
//! When full, saving a new session evicts the one closest to expiry. Tag indexes hold exactly the
//! live sessions that carry the tag, so they expire with them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{LockToken, SessionStore, StoreError, StoreKey, check_ttl};

/// A [`SessionStore`] in this process's memory. Clones share the same sessions.
///
/// Sessions do not survive a restart and are not shared between replicas; use
/// [`RedisStore`](super::RedisStore) for that. Time is read from `tokio::time`, so tests with a
/// paused clock control expiry.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    capacity: usize,
}

impl MemoryStore {
    /// A store holding at most `capacity` sessions (at least one).
    pub fn new(capacity: usize) -> Self {
        MemoryStore {
            state: Arc::new(Mutex::new(State::default())),
            capacity: capacity.max(1),
        }
    }

    /// How many live sessions are stored.
    pub fn len(&self) -> usize {
        let mut state = self.lock();
        state.purge_expired(Instant::now());
        state.sessions.len()
    }

    /// True when no live session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every mutation leaves the maps consistent before it can panic, so a poisoned lock
        // still guards valid data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StoreError> {
        let mut state = self.lock();
        state.purge_expired(Instant::now());
        Ok(state.sessions.get(key).map(|entry| entry.value.clone()))
    }

    async fn save(
        &self,
        key: &StoreKey,
        value: &[u8],
        tags: &[StoreKey],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        check_ttl(ttl)?;
        let now = Instant::now();
        let mut state = self.lock();
        state.purge_expired(now);
        state.remove(key);
        while state.sessions.len() >= self.capacity {
            let Some(&(_, oldest)) = state.expiry.first() else {
                break;
            };
            state.remove(&oldest);
        }
        let expires_at = now + ttl;
        for tag in tags {
            state.tags.entry(*tag).or_default().insert(*key);
        }
        state.expiry.insert((expires_at, *key));
        state.sessions.insert(
            *key,
            Entry {
                value: value.to_vec(),
                expires_at,
                tags: tags.to_vec(),
            },
        );
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn delete_tagged(&self, tag: &StoreKey) -> Result<usize, StoreError> {
        let mut state = self.lock();
        state.purge_expired(Instant::now());
        let members = state.tags.remove(tag).unwrap_or_default();
        let mut removed = 0;
        for member in members {
            if state.remove(&member) {
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn try_lock(
        &self,
        name: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        check_ttl(ttl)?;
        let now = Instant::now();
        let mut state = self.lock();
        state.locks.retain(|_, (_, expires_at)| *expires_at > now);
        if state.locks.contains_key(name) {
            return Ok(false);
        }
        state.locks.insert(*name, (token.clone(), now + ttl));
        Ok(true)
    }

    async fn unlock(&self, name: &StoreKey, token: &LockToken) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        match state.locks.get(name) {
            Some((holder, expires_at)) if holder == token && *expires_at > now => {
                state.locks.remove(name);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<StoreKey, Entry>,
    /// Held locks: the holder's token and when the lock frees itself.
    locks: HashMap<StoreKey, (LockToken, Instant)>,
    expiry: BTreeSet<(Instant, StoreKey)>,
    tags: HashMap<StoreKey, HashSet<StoreKey>>,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires_at: Instant,
    tags: Vec<StoreKey>,
}

impl State {
    fn purge_expired(&mut self, now: Instant) {
        while let Some(&(expires_at, key)) = self.expiry.first() {
            if expires_at > now {
                break;
            }
            self.remove(&key);
        }
    }

    /// Removes a session and its tag memberships; true when it existed.
    fn remove(&mut self, key: &StoreKey) -> bool {
        let Some(entry) = self.sessions.remove(key) else {
            return false;
        };
        self.expiry.remove(&(entry.expires_at, *key));
        for tag in &entry.tags {
            if let Some(members) = self.tags.get_mut(tag) {
                members.remove(key);
                if members.is_empty() {
                    self.tags.remove(tag);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> StoreKey {
        StoreKey::for_session_id(&[n])
    }

    #[tokio::test(start_paused = true)]
    async fn values_expire_after_their_ttl() {
        let store = MemoryStore::new(10);
        store
            .save(&key(1), b"v", &[], Duration::from_secs(10))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(store.load(&key(1)).await.unwrap(), Some(b"v".to_vec()));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(store.load(&key(1)).await.unwrap(), None);
        assert!(store.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn full_store_evicts_the_session_closest_to_expiry() {
        let store = MemoryStore::new(2);
        store
            .save(&key(1), b"a", &[], Duration::from_secs(5))
            .await
            .unwrap();
        store
            .save(&key(2), b"b", &[], Duration::from_secs(50))
            .await
            .unwrap();
        store
            .save(&key(3), b"c", &[], Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.load(&key(1)).await.unwrap(), None);
        assert_eq!(store.load(&key(2)).await.unwrap(), Some(b"b".to_vec()));
        assert_eq!(store.load(&key(3)).await.unwrap(), Some(b"c".to_vec()));
    }

    #[tokio::test(start_paused = true)]
    async fn tags_follow_their_sessions() {
        let store = MemoryStore::new(10);
        let tag = StoreKey::for_subject("iss", "alice");
        store
            .save(&key(1), b"a", &[tag], Duration::from_secs(5))
            .await
            .unwrap();
        store
            .save(&key(2), b"b", &[tag], Duration::from_secs(50))
            .await
            .unwrap();
        store
            .save(&key(3), b"c", &[], Duration::from_secs(50))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        // key(1) expired on its own: only key(2) is revoked.
        assert_eq!(store.delete_tagged(&tag).await.unwrap(), 1);
        assert_eq!(store.load(&key(2)).await.unwrap(), None);
        assert_eq!(store.load(&key(3)).await.unwrap(), Some(b"c".to_vec()));
        assert_eq!(store.delete_tagged(&tag).await.unwrap(), 0);
        assert!(store.lock().tags.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_is_exclusive_released_by_its_holder_only_and_frees_itself() {
        let store = MemoryStore::new(10);
        let name = StoreKey::for_refresh_of(&key(1));
        let mut random = oidc_core::danger::InsecureSeededRandom::new(1);
        let (first, second) = (
            LockToken::generate(&mut random),
            LockToken::generate(&mut random),
        );
        let ttl = Duration::from_secs(5);
        assert!(store.try_lock(&name, &first, ttl).await.unwrap());
        assert!(!store.try_lock(&name, &second, ttl).await.unwrap());
        assert!(!store.unlock(&name, &second).await.unwrap(), "not its lock");
        assert!(store.unlock(&name, &first).await.unwrap());
        assert!(store.try_lock(&name, &second, ttl).await.unwrap());

        // The holder dies: after the TTL the lock is free, and the dead holder's late unlock
        // does not release the new holder's lock.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(store.try_lock(&name, &first, ttl).await.unwrap());
        assert!(!store.unlock(&name, &second).await.unwrap());
        assert!(!store.try_lock(&name, &second, ttl).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn resaving_replaces_value_ttl_and_tags() {
        let store = MemoryStore::new(10);
        let old_tag = StoreKey::for_subject("iss", "old");
        store
            .save(&key(1), b"a", &[old_tag], Duration::from_secs(5))
            .await
            .unwrap();
        store
            .save(&key(1), b"b", &[], Duration::from_secs(60))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(store.load(&key(1)).await.unwrap(), Some(b"b".to_vec()));
        assert_eq!(store.delete_tagged(&old_tag).await.unwrap(), 0);
        assert_eq!(store.len(), 1);
    }
}
