//! The local store: one JSON file, written atomically (temporary file, then rename) so a
//! reader or a restart never sees half a file. It holds the binding identities that let a
//! restart refresh the registrar's existing bindings instead of adding second ones, and
//! in file mode the latest status of every provider as well:
//! `{"providers": {"<id>": {"registerStatus": …}}, "bindings": {"<id>": {"callId": …}}}`.

use crate::dense::Densify;
use serde::{Deserialize, Serialize};
use sip_core::{BindingIdentity, RequestId, StatusReport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// One change for the store.
#[derive(Debug)]
pub enum StoreWrite {
    /// A provider's status (file mode); acknowledged once it is on disk.
    Status {
        id: RequestId,
        provider_id: String,
        report: StatusReport,
    },
    /// A binding identity to keep.
    Binding(BindingIdentity),
    /// A provider is gone.
    Forget(String),
}

/// How long a write waits for more changes of the same burst: one write of the whole
/// file then covers all of them (ten thousand reports become a handful of writes).
const GATHER: Duration = Duration::from_millis(20);

/// The longest a change waits to be written: after a slow write the next one gathers
/// for twice as long as the write took (so rewriting a large file takes at most a third
/// of a core during a burst), but never longer than this.
const GATHER_MAX: Duration = Duration::from_secs(1);

/// The file as it is read.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreFile {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    providers: BTreeMap<String, StatusReport>,
    #[serde(default)]
    bindings: BTreeMap<String, BindingIdentity>,
}

/// The file as the writer keeps it between writes: one entry per provider holding its
/// status and binding identity already serialized. At 100,000 providers the two maps of
/// [`StoreFile`] (two keys, a `StatusReport` and a `BindingIdentity` with six strings
/// per provider) cost about 500 bytes each; one key and two JSON strings cost about 350,
/// and less with the binding's copy of the key left out and full tree nodes (see
/// [`crate::dense`]).
#[derive(Debug, Default)]
struct Entries {
    map: BTreeMap<Box<str>, Entry>,
    dense: Densify,
}

#[derive(Debug, Default)]
struct Entry {
    /// The `StatusReport`, as JSON (file mode).
    status: Option<Box<str>>,
    /// The `BindingIdentity`, as JSON; without its leading `{"providerId":<key>,` when
    /// that is the entry's own key (25 bytes and a smaller allocation per provider).
    /// The remainder starts with `"`, a whole JSON object with `{`: so the writer knows
    /// which it holds.
    binding: Option<Box<str>>,
}

/// What a binding's JSON starts with when its provider id is `id`.
fn binding_prefix(id: &str) -> Option<String> {
    Some(format!(
        "{{\"providerId\":{},",
        serde_json::to_string(id).ok()?
    ))
}

/// `binding` (a `BindingIdentity` as JSON) for the entry keyed `id`, the key's copy left
/// out when it is there.
fn keyed_binding(id: &str, binding: Box<str>) -> Box<str> {
    match binding_prefix(id).and_then(|p| binding.strip_prefix(p.as_str())) {
        Some(rest) if rest.starts_with('"') => rest.into(),
        _ => binding,
    }
}

fn json(value: &impl Serialize) -> Option<Box<str>> {
    // Serializing these plain structs cannot fail; an entry that did is left out.
    serde_json::to_string(value)
        .ok()
        .map(String::into_boxed_str)
}

impl Entries {
    fn from_file(file: StoreFile) -> Self {
        let mut entries = Self::default();
        for (id, report) in file.providers {
            entries.map.entry(id.into()).or_default().status = json(&report);
        }
        for (id, binding) in file.bindings {
            let raw = json(&binding).map(|b| keyed_binding(&id, b));
            entries.map.entry(id.into()).or_default().binding = raw;
        }
        entries.compact_if_grown();
        entries
    }

    /// Keeps the binding of `id` (the key's copy left out, see [`Entry::binding`]).
    fn set_binding(&mut self, b: &BindingIdentity) {
        let raw = json(b).map(|raw| keyed_binding(&b.provider_id, raw));
        self.map
            .entry(b.provider_id.as_str().into())
            .or_default()
            .binding = raw;
    }

    /// Full tree nodes; run on the writer's blocking thread after a write.
    fn compact_if_grown(&mut self) -> bool {
        self.dense.after_growth(&mut self.map)
    }

    /// Writes the same JSON that serializing a [`StoreFile`] would.
    fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let section = |out: &mut dyn std::io::Write,
                       pick: fn(&Entry) -> Option<&str>|
         -> std::io::Result<()> {
            out.write_all(b"{")?;
            let mut first = true;
            for (id, raw) in self.map.iter().filter_map(|(id, e)| Some((id, pick(e)?))) {
                if !first {
                    out.write_all(b",")?;
                }
                first = false;
                serde_json::to_writer(&mut *out, &**id)?;
                out.write_all(b":")?;
                if !raw.starts_with('{') {
                    // A binding without its key's copy (see `Entry::binding`).
                    out.write_all(b"{\"providerId\":")?;
                    serde_json::to_writer(&mut *out, &**id)?;
                    out.write_all(b",")?;
                }
                out.write_all(raw.as_bytes())?;
            }
            out.write_all(b"}")
        };
        out.write_all(b"{")?;
        if self.map.values().any(|e| e.status.is_some()) {
            out.write_all(b"\"providers\":")?;
            section(out, |e| e.status.as_deref())?;
            out.write_all(b",")?;
        }
        out.write_all(b"\"bindings\":")?;
        section(out, |e| e.binding.as_deref())?;
        out.write_all(b"}")
    }
}

/// Reads the binding identities a previous run left. A missing file is a first start;
/// an unreadable one is reported and ignored (the registrations then start afresh).
pub fn load_bindings(path: &Path) -> Vec<BindingIdentity> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the state file; registrations start with fresh identities");
            return Vec::new();
        }
    };
    match serde_json::from_slice::<StoreFile>(&bytes) {
        Ok(f) => f.bindings.into_values().collect(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the state file is not valid; registrations start with fresh identities");
            Vec::new()
        }
    }
}

/// Starts the writer task for `path`, keeping what the file already holds. Status writes
/// are acknowledged on `acks` once renamed into place (or with the error).
/// The writer ends after its last write once every sender is dropped: await the handle
/// to know the file is complete.
pub fn spawn_writer(
    path: PathBuf,
    acks: mpsc::UnboundedSender<(RequestId, Result<(), String>)>,
) -> (
    mpsc::UnboundedSender<StoreWrite>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<StoreWrite>();
    let handle = tokio::spawn(async move {
        let mut file = Entries::from_file(
            std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default(),
        );
        let mut warned = false;
        let mut gather = GATHER;
        while let Some(first) = rx.recv().await {
            let mut batch = Vec::new();
            apply(&mut file, first, &mut batch);
            tokio::time::sleep(gather).await;
            while let Ok(more) = rx.try_recv() {
                apply(&mut file, more, &mut batch);
            }
            // Serialized straight into the file on a blocking thread: no whole-file
            // buffer (megabytes at 10k providers), and the SIP loop keeps running.
            let started = tokio::time::Instant::now();
            let (back, result) = {
                let path = path.clone();
                let taken = std::mem::take(&mut file);
                tokio::task::spawn_blocking(move || {
                    let r = write_atomically(&path, &taken);
                    let mut taken = taken;
                    let _ = taken.compact_if_grown();
                    (taken, r)
                })
                .await
                .unwrap_or_else(|e| (Entries::default(), Err(format!("writer task failed: {e}"))))
            };
            file = back;
            gather = (started.elapsed() * 2).clamp(GATHER, GATHER_MAX);
            match &result {
                Err(e) if !warned => {
                    tracing::error!(path = %path.display(), error = %e, "cannot write the state/status file");
                    warned = true;
                }
                Ok(()) => warned = false,
                Err(_) => {}
            }
            for id in batch {
                let _ = acks.send((id, result.clone()));
            }
        }
    });
    (tx, handle)
}

fn apply(file: &mut Entries, write: StoreWrite, acks: &mut Vec<RequestId>) {
    match write {
        StoreWrite::Status {
            id,
            provider_id,
            report,
        } => {
            file.map.entry(provider_id.into()).or_default().status = json(&report);
            acks.push(id);
        }
        StoreWrite::Binding(b) => file.set_binding(&b),
        StoreWrite::Forget(id) => {
            file.map.remove(id.as_str());
        }
    }
}

/// The store's files are readable by trunkline's user alone: they name every provider,
/// its account and registrar, and the binding identities that let anyone who reads them
/// refresh or remove the bindings.
const FILE_MODE: u32 = 0o600;

/// Creates (or truncates) `path` with [`FILE_MODE`]. The mode is set on the open file as
/// well, since a temporary file left by a crash keeps the mode it was created with.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

fn write_atomically(path: &Path, file: &Entries) -> Result<(), String> {
    use std::io::Write as _;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(create_private(&tmp)?);
        file.write_json(&mut out)?;
        out.flush()?;
        out.into_inner()
            .map_err(std::io::IntoInnerError::into_error)?
            .sync_data()
    };
    write().map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use sip_core::RegisterStatus;

    fn identity(id: &str, next: u32) -> BindingIdentity {
        BindingIdentity {
            provider_id: id.into(),
            account: "u@h:5060".into(),
            call_id: "c".into(),
            from_tag: "t".into(),
            line: "l".into(),
            next_cseq: next,
        }
    }

    #[tokio::test]
    async fn writes_statuses_and_bindings_and_reads_bindings_back() {
        let dir = std::env::temp_dir().join(format!("trunkline-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let (ack_tx, mut ack_rx) = mpsc::unbounded_channel();
        let (w, _handle) = spawn_writer(path.clone(), ack_tx);
        w.send(StoreWrite::Binding(identity("a", 101))).unwrap();
        w.send(StoreWrite::Binding(identity("b", 201))).unwrap();
        w.send(StoreWrite::Forget("b".into())).unwrap();
        w.send(StoreWrite::Status {
            id: RequestId(7),
            provider_id: "a".into(),
            report: StatusReport {
                register_status: RegisterStatus::Registered,
                register_error: None,
                last_register_at: Some("2026-01-01T00:00:00.000Z".into()),
            },
        })
        .unwrap();
        let (id, res) = ack_rx.recv().await.unwrap();
        assert_eq!(id, RequestId(7));
        assert!(res.is_ok());
        let back = load_bindings(&path);
        assert_eq!(back, vec![identity("a", 101)]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"registerStatus\":\"registered\""), "{text}");
        assert!(!dir.join("state.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_file_and_its_temporary_are_readable_by_the_owner_alone() {
        let dir = std::env::temp_dir().join(format!("trunkline-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        // Older versions left the file 0644, and a crash can leave a 0644 temporary.
        let tmp = dir.join("state.json.tmp");
        for stale in [&path, &tmp] {
            std::fs::write(stale, b"{}").unwrap();
            std::fs::set_permissions(stale, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
        }
        let fresh = dir.join("fresh.tmp");
        drop(create_private(&fresh).unwrap());
        assert_eq!(mode(&fresh), 0o600, "a new temporary file");
        drop(create_private(&tmp).unwrap());
        assert_eq!(mode(&tmp), 0o600, "a temporary file left by a crash");
        let file = Entries::default();
        write_atomically(&path, &file).unwrap();
        assert_eq!(mode(&path), 0o600, "the store file after a write");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_compact_entries_write_what_the_file_type_serializes() {
        let report = StatusReport {
            register_status: RegisterStatus::Failed,
            register_error: Some("quote \" and \\ in it".into()),
            last_register_at: None,
        };
        let mut with_status = StoreFile::default();
        with_status.providers.insert("a\"1".into(), report.clone());
        with_status.providers.insert("b".into(), report);
        with_status
            .bindings
            .insert("a\"1".into(), identity("a\"1", 101));
        with_status.bindings.insert("c".into(), identity("c", 301));
        // A hand-edited file whose key is not the binding's provider id: kept whole.
        with_status.bindings.insert("d".into(), identity("e", 401));
        let bindings_only = StoreFile {
            providers: BTreeMap::new(),
            bindings: with_status.bindings.clone(),
        };
        for file in [with_status, bindings_only, StoreFile::default()] {
            let expected = serde_json::to_string(&file).unwrap();
            let mut written = Vec::new();
            Entries::from_file(file).write_json(&mut written).unwrap();
            assert_eq!(String::from_utf8(written).unwrap(), expected);
        }
    }

    /// The binding's copy of its key is left out and the rebuilt map holds the same
    /// entries: the file is the one serde writes, byte for byte.
    #[test]
    fn keyed_bindings_and_rebuilt_maps_write_the_same_file() {
        let mut expected = StoreFile::default();
        let mut entries = Entries::default();
        for i in 0..3000u32 {
            let b = identity(&format!("p{i:05}"), i);
            entries.set_binding(&b);
            expected.bindings.insert(b.provider_id.clone(), b);
        }
        let stripped = entries
            .map
            .values()
            .filter(|e| e.binding.as_deref().is_some_and(|b| b.starts_with('"')))
            .count();
        assert_eq!(stripped, 3000, "every binding keyed by its own provider id");
        assert!(
            entries.compact_if_grown(),
            "3,000 entries since none: rebuilt"
        );
        let mut written = Vec::new();
        entries.write_json(&mut written).unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        // Grown by less than a quarter: not rebuilt again.
        entries.set_binding(&identity("q", 1));
        assert!(!entries.compact_if_grown());
    }

    #[test]
    fn missing_or_corrupt_files_mean_fresh_identities() {
        assert!(load_bindings(Path::new("/nonexistent/trunkline/state.json")).is_empty());
        let path =
            std::env::temp_dir().join(format!("trunkline-corrupt-{}.json", std::process::id()));
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load_bindings(&path).is_empty());
        std::fs::remove_file(&path).unwrap();
    }
}
