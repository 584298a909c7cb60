//! The contract on `MemoryStore`.

use fastapihooks_core::{MemoryStore, Store};

async fn with_store(behaviour: impl AsyncFnOnce(&dyn Store)) {
    behaviour(&MemoryStore::new()).await;
}

fastapihooks_testkit::store_contract!(with_store);

async fn with_inbox(behaviour: impl AsyncFnOnce(&dyn fastapihooks_core::inbox::Inbox)) {
    behaviour(&MemoryStore::new()).await;
}

fastapihooks_testkit::inbox_contract!(with_inbox);
