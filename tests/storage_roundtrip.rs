//! Property tests: every domain type makes an exact round trip through the storage, and storing a
//! record again replaces it.
#![cfg(feature = "libsql")]

mod storage_support;
mod strategies;

use std::sync::OnceLock;

use futures_lite::future::block_on;
use memory_storage_turso::rt::Blocking;
use memory_storage_turso::storage::TursoStorage;
use proptest::prelude::*;

/// One storage for every case: cases use random ids, so they do not meet.
fn storage() -> &'static TursoStorage<Blocking> {
    static STORAGE: OnceLock<(storage_support::TempDb, TursoStorage<Blocking>)> = OnceLock::new();
    let (_, storage) = STORAGE.get_or_init(|| {
        let db = storage_support::TempDb::new();
        let storage = storage_support::blocking_storage(&db.url);
        (db, storage)
    });
    storage
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn episodes_round_trip(episode in strategies::episode(), replacement in strategies::episode()) {
        let storage = storage();
        block_on(storage.store_episode(&episode)).unwrap();
        prop_assert_eq!(block_on(storage.get_episode(episode.episode_id)).unwrap(), Some(episode.clone()));

        let replacement = memory_storage_turso::storage::Episode { episode_id: episode.episode_id, ..replacement };
        block_on(storage.store_episodes(std::slice::from_ref(&replacement))).unwrap();
        prop_assert_eq!(block_on(storage.get_episode(episode.episode_id)).unwrap(), Some(replacement));
    }

    #[test]
    fn patterns_round_trip(pattern in strategies::pattern()) {
        let storage = storage();
        block_on(storage.store_pattern(&pattern)).unwrap();
        prop_assert_eq!(block_on(storage.get_pattern(pattern.id())).unwrap(), Some(pattern));
    }

    #[test]
    fn heuristics_round_trip(heuristic in strategies::heuristic()) {
        let storage = storage();
        block_on(storage.store_heuristic(&heuristic)).unwrap();
        prop_assert_eq!(
            block_on(storage.get_heuristic(heuristic.heuristic_id)).unwrap(),
            Some(heuristic)
        );
    }
}
