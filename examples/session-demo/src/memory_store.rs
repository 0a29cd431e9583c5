//! The anti-pattern, for contrast (`--session-store memory`): sessions in the
//! process's own memory. Another replica does not know them and they are lost
//! with the pod, so a client sent elsewhere (or back after a restart) starts
//! again at one visit. The semantics are otherwise Redis's: a visit counts
//! one and re-arms a 30-minute expiry; a session the store does not hold
//! starts at 1. The map is bounded (the least recently visited sessions go
//! first), so a load test cannot grow it without limit.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Sessions held at most; beyond it the least recently visited is evicted.
/// About 100 bytes each, so ~10 MiB at the bound.
pub const CAPACITY: usize = 100_000;

struct Entry {
    visits: i64,
    /// Key of this session in `Inner::by_visit`.
    seq: u64,
    last_visit: Instant,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Entry>,
    /// Session ids by their last visit, oldest first (`seq` grows with every
    /// visit, all under the lock, so its order is the order of the visits).
    by_visit: BTreeMap<u64, String>,
    next_seq: u64,
}

pub struct MemoryStore {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            inner: Mutex::default(),
        }
    }

    /// Counts one visit of session `id`; the number of visits so far (1 for a
    /// session this process does not hold, or no longer holds).
    pub fn visit(&self, id: &str) -> i64 {
        self.visit_at(id, Instant::now())
    }

    fn visit_at(&self, id: &str, now: Instant) -> i64 {
        // A panic elsewhere while holding the lock leaves the map consistent
        // (every update below is complete before it can panic), so go on.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Inner {
            sessions,
            by_visit,
            next_seq,
        } = &mut *inner;
        // Expired sessions are the oldest ones: drop them from the front.
        while let Some(entry) = by_visit.first_entry() {
            let expired = sessions
                .get(entry.get())
                .is_none_or(|s| now.saturating_duration_since(s.last_visit) >= self.ttl);
            if !expired {
                break;
            }
            sessions.remove(&entry.remove());
        }
        let seq = *next_seq;
        *next_seq += 1;
        let visits = match sessions.get_mut(id) {
            Some(session) => {
                by_visit.remove(&session.seq);
                session.visits = session.visits.saturating_add(1);
                session.seq = seq;
                session.last_visit = now;
                session.visits
            }
            None => {
                sessions.insert(
                    id.to_owned(),
                    Entry {
                        visits: 1,
                        seq,
                        last_visit: now,
                    },
                );
                1
            }
        };
        by_visit.insert(seq, id.to_owned());
        while sessions.len() > self.capacity {
            match by_visit.pop_first() {
                Some((_, oldest)) => {
                    sessions.remove(&oldest);
                }
                None => break,
            }
        }
        visits
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(inner.sessions.len(), inner.by_visit.len());
        inner.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(1800);

    #[test]
    fn visits_count_per_session() {
        let store = MemoryStore::new(TTL, CAPACITY);
        assert_eq!(store.visit("a"), 1);
        assert_eq!(store.visit("a"), 2);
        assert_eq!(store.visit("b"), 1);
        assert_eq!(store.visit("a"), 3);
        assert_eq!(store.visit("b"), 2);
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn a_session_another_store_holds_starts_at_one() {
        // Two replicas, each with its own memory: the session is not shared.
        let (one, other) = (
            MemoryStore::new(TTL, CAPACITY),
            MemoryStore::new(TTL, CAPACITY),
        );
        assert_eq!(one.visit("a"), 1);
        assert_eq!(one.visit("a"), 2);
        assert_eq!(other.visit("a"), 1);
        assert_eq!(one.visit("a"), 3);
    }

    #[test]
    fn sessions_expire_after_the_ttl_without_a_visit() {
        let store = MemoryStore::new(TTL, CAPACITY);
        let t0 = Instant::now();
        assert_eq!(store.visit_at("a", t0), 1);
        assert_eq!(store.visit_at("b", t0), 1);
        // Each visit re-arms the expiry: "a" lives on, "b" is not visited.
        assert_eq!(store.visit_at("a", t0 + TTL - Duration::from_secs(1)), 2);
        assert_eq!(store.visit_at("a", t0 + TTL + Duration::from_secs(1)), 3);
        assert_eq!(store.len(), 1, "b expired and was dropped");
        assert_eq!(store.visit_at("b", t0 + TTL + Duration::from_secs(2)), 1);
        // Exactly one TTL after the last visit, the session is gone.
        let last = t0 + TTL + Duration::from_secs(1);
        assert_eq!(store.visit_at("a", last + TTL), 1);
    }

    #[test]
    fn the_map_is_bounded_and_evicts_the_least_recently_visited() {
        let store = MemoryStore::new(TTL, 3);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        store.visit_at("a", at(0));
        store.visit_at("b", at(1));
        store.visit_at("c", at(2));
        assert_eq!(store.visit_at("a", at(3)), 2, "a is now the most recent");
        store.visit_at("d", at(4));
        assert_eq!(store.len(), 3);
        // b was the least recently visited: evicted, it starts again.
        assert_eq!(store.visit_at("a", at(5)), 3);
        assert_eq!(store.visit_at("c", at(6)), 2);
        assert_eq!(store.visit_at("b", at(7)), 1);
        assert_eq!(store.len(), 3);
        // Many new sessions never grow it beyond the bound.
        for i in 0..1000 {
            store.visit_at(&format!("s{i}"), at(8));
        }
        assert_eq!(store.len(), 3);
    }
}
