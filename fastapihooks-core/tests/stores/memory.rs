//! The contract on `MemoryStore`.

use fastapihooks_core::{MemoryStore, Store};

async fn with_store(behaviour: impl AsyncFnOnce(&dyn Store)) {
    behaviour(&MemoryStore::new()).await;
}

fastapihooks_testkit::store_contract!(with_store);
