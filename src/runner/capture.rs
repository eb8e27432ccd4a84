//! A run's output on its way to the store: lines read from a pipe as they
//! arrive, and one writer task that stores them in small batches.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::store::{DeploymentKey, LogLine, LogStream, Store};

/// The longest line kept, in bytes; the rest of an absurd line (a minified
/// bundle printed by mistake) is dropped with a marker instead of filling
/// the store.
pub(super) const MAX_LINE_BYTES: usize = 16 * 1024;

/// Appended to a line that was cut at [`MAX_LINE_BYTES`].
pub(super) const TRUNCATED_MARKER: &str = " [line truncated by hoist]";

/// Lines stored per write at most: batching saves a commit per line, the
/// bound keeps one write short.
const MAX_BATCH: usize = 256;

/// Lines waiting for the writer; a script that prints faster than the store
/// writes is slowed down rather than buffered without end.
const CHANNEL_CAPACITY: usize = 1024;

/// Values a run's log never shows, each replaced by [`MASK`] wherever a
/// line holds it (a script that echoes its environment, a tool that
/// prints its command line).
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

/// What a masked secret reads as.
pub const MASK: &str = "***";

/// Shorter values are not masked: masking `on` or `1` everywhere would
/// garble the log and hide nothing.
const MIN_SECRET_CHARS: usize = 4;

impl Masker {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|secret| secret.chars().count() >= MIN_SECRET_CHARS)
            .collect();
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// This masker and `more` besides: the secrets of one run (the token
    /// its checkout was fetched with).
    pub fn with(&self, more: impl IntoIterator<Item = String>) -> Self {
        Self::new(self.secrets.iter().cloned().chain(more))
    }

    fn mask(&self, mut text: String) -> String {
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), MASK);
            }
        }
        text
    }
}

/// Collects a run's log lines and stores them in arrival order.
pub(super) struct LogSink {
    tx: mpsc::Sender<LogLine>,
    writer: JoinHandle<()>,
}

impl LogSink {
    pub(super) fn start(store: Arc<dyn Store>, key: DeploymentKey, masker: Masker) -> Self {
        let (tx, mut rx) = mpsc::channel::<LogLine>(CHANNEL_CAPACITY);
        let writer = tokio::spawn(async move {
            let masked = |line: LogLine| LogLine {
                text: masker.mask(line.text),
                ..line
            };
            while let Some(first) = rx.recv().await {
                let mut batch = vec![masked(first)];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(line) => batch.push(masked(line)),
                        Err(_) => break,
                    }
                }
                // A log that cannot be stored must not fail the deployment
                // itself: say so in hoist's own log and carry on.
                if let Err(error) = store.append_log(&key, &batch).await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        deployment = %key.id,
                        "cannot store run output"
                    );
                }
            }
        });
        Self { tx, writer }
    }

    pub(super) fn sender(&self) -> mpsc::Sender<LogLine> {
        self.tx.clone()
    }

    /// A line from hoist itself (started, exit code, timeout).
    pub(super) async fn note(&self, text: impl Into<String>) {
        send(&self.tx, LogStream::Hoist, text.into()).await;
    }

    /// Waits until every line sent so far is stored. Readers holding a
    /// [`Self::sender`] must be finished or aborted first.
    pub(super) async fn finish(self) {
        drop(self.tx);
        if let Err(error) = self.writer.await {
            tracing::warn!(%error, "the log writer stopped abnormally");
        }
    }
}

async fn send(tx: &mpsc::Sender<LogLine>, stream: LogStream, text: String) {
    let line = LogLine {
        at: Timestamp::now(),
        stream,
        text,
    };
    // The writer only goes away after every sender is dropped.
    let _ = tx.send(line).await;
}

/// Reads `pipe` line by line until it closes, sending each line as it
/// arrives. Bytes that are not UTF-8 are replaced, not fatal.
pub(super) async fn read_lines<R>(pipe: R, stream: LogStream, tx: mpsc::Sender<LogLine>)
where
    R: AsyncRead + Unpin,
{
    let mut reader = BufReader::new(pipe);
    let mut line: Vec<u8> = Vec::new();
    let mut truncated = false;
    loop {
        // A read error ends the stream like EOF: the process is what
        // decides the outcome, not its pipes.
        let chunk = match reader.fill_buf().await {
            Ok(chunk) if !chunk.is_empty() => chunk,
            _ => break,
        };
        let (part, ends_line) = match chunk.iter().position(|&b| b == b'\n') {
            Some(newline) => (chunk.get(..newline).unwrap_or_default(), true),
            None => (chunk, false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        if part.len() > room {
            truncated = true;
        }
        line.extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
        let used = part.len() + usize::from(ends_line);
        reader.consume(used);
        if ends_line {
            send(&tx, stream, finish_line(&line, truncated)).await;
            line.clear();
            truncated = false;
        }
    }
    if !line.is_empty() || truncated {
        send(&tx, stream, finish_line(&line, truncated)).await;
    }
}

fn finish_line(bytes: &[u8], truncated: bool) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if truncated {
        text.push_str(TRUNCATED_MARKER);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_whole_and_short_values_left_alone() {
        let masker = Masker::new([
            "s3cret".to_owned(),
            "s3cret-longer".to_owned(),
            "on".to_owned(),
        ]);
        assert_eq!(
            masker.mask("token=s3cret-longer and s3cret, debug on".into()),
            "token=*** and ***, debug on"
        );
        assert_eq!(
            Masker::default().mask("nothing to hide".into()),
            "nothing to hide"
        );
    }
}
