//! The in-memory store passes the same suite as the DynamoDB adapter.

#[tokio::test]
async fn memory_store_keeps_the_store_contract() {
    let store = norris_ports::MemoryStore::new();
    norris_ports::conformance::run_all(&store, "mem").await;
}

#[tokio::test]
async fn memory_store_keeps_the_group_store_contract() {
    let store = norris_ports::MemoryStore::new();
    norris_ports::conformance::run_groups(&store, "mem").await;
}
