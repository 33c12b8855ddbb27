//! A lake in a folder and a sink over it, as the tests start from.

use std::path::Path;
use std::sync::Arc;

use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine};
use bright_ingest::sink::Sink;

/// The lake in `dir/lake`, its tables created.
pub async fn lake(dir: &Path) -> Lake {
    let lake = Lake::open(dir.join("lake").to_str().expect("utf-8")).expect("lake");
    lake.ensure_tables().await.expect("tables");
    lake
}

/// A query engine over `lake` and a sink feeding it, its log in `wal`.
pub async fn sink(lake: &Lake, wal: &Path) -> (Arc<QueryEngine>, Arc<Sink>) {
    let engine = Arc::new(
        QueryEngine::open(lake, &QueryConfig::default())
            .await
            .expect("engine"),
    );
    let (sink, _) = Sink::open(engine.clone(), wal).await.expect("sink");
    (engine, Arc::new(sink))
}
