//! File mode's status store: the latest status of every provider, written atomically
//! (temporary file, then rename) so a reader never sees a half-written file.

use sip_core::{RequestId, StatusReport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// One status to persist, and the request to acknowledge once it is on disk.
#[derive(Debug)]
pub struct StatusWrite {
    pub id: RequestId,
    pub provider_id: String,
    pub report: StatusReport,
}

/// Persists statuses in the background. Writes are coalesced: a burst of ten thousand
/// reports becomes a few file writes, each acknowledged once it is renamed into place.
pub fn spawn_writer(
    path: PathBuf,
    acks: mpsc::UnboundedSender<(RequestId, Result<(), String>)>,
) -> mpsc::UnboundedSender<StatusWrite> {
    let (tx, mut rx) = mpsc::unbounded_channel::<StatusWrite>();
    tokio::spawn(async move {
        let mut all: BTreeMap<String, StatusReport> = BTreeMap::new();
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first.id];
            all.insert(first.provider_id, first.report);
            // Let a burst gather: one write of the whole file then covers all of it.
            tokio::time::sleep(GATHER).await;
            while let Ok(more) = rx.try_recv() {
                batch.push(more.id);
                all.insert(more.provider_id, more.report);
            }
            let result = write_atomically(&path, &all).await;
            if let Err(e) = &result {
                tracing::error!(path = %path.display(), error = %e, "cannot write the status file");
            }
            for id in batch {
                let _ = acks.send((id, result.clone()));
            }
        }
    });
    tx
}

/// How long a write waits for more statuses of the same burst.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

/// The file's shape: `{"providers": {"<id>": {"registerStatus": …}}}`.
#[derive(serde::Serialize)]
struct StatusFile<'a> {
    providers: &'a BTreeMap<String, StatusReport>,
}

async fn write_atomically(path: &Path, all: &BTreeMap<String, StatusReport>) -> Result<(), String> {
    let body =
        serde_json::to_vec_pretty(&StatusFile { providers: all }).map_err(|e| e.to_string())?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    tokio::fs::write(&tmp, &body)
        .await
        .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), path.display()))
}
