//! Streaming a command's output line by line as it arrives (`drover logs --follow`):
//! a channel of its own on the host's connection, read by a task that sends complete
//! lines through a bounded tokio mpsc, and closes the channel when the stream is
//! stopped or dropped (russh channels are only closed by an explicit `close()`).
//!
//! The queue is bounded: when the reader falls behind, the task stops reading, the SSH
//! window fills up and the host's command blocks on its output; memory stays flat.

use std::time::Duration;

use russh::ChannelMsg;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::Session;
use super::error::TransportError;

/// Lines longer than this are cut into pieces (a runaway line never eats memory).
pub const MAX_LINE: usize = 64 * 1024;
/// Lines queued between the channel and the reader.
const QUEUE: usize = 256;

/// What a streaming command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A line of standard output (without its newline).
    Stdout(String),
    /// A line of standard error.
    Stderr(String),
    /// The command ended; nothing follows.
    Exited {
        /// exit status, when it exited
        status: Option<u32>,
        /// signal name, when it was killed by one
        signal: Option<String>,
    },
    /// The connection died before the command ended; nothing follows.
    Lost,
}

/// Splits a byte stream into lines, keeping the unfinished tail for the next chunk.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds a chunk; returns the lines it completed (lossily decoded, `\r\n` trimmed).
    pub fn push(&mut self, data: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in data {
            if byte == b'\n' {
                lines.push(Self::text(&std::mem::take(&mut self.pending)));
            } else {
                self.pending.push(byte);
                if self.pending.len() >= MAX_LINE {
                    lines.push(Self::text(&std::mem::take(&mut self.pending)));
                }
            }
        }
        lines
    }

    /// The unfinished last line, if any (at the end of the stream).
    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| Self::text(&std::mem::take(&mut self.pending)))
    }

    fn text(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        text.strip_suffix('\r').unwrap_or(&text).to_string()
    }
}

/// A command whose output arrives line by line. Dropping it (or [`CommandStream::stop`])
/// closes the channel: the host's command sees its standard input close.
#[derive(Debug)]
pub struct CommandStream {
    events: mpsc::Receiver<StreamEvent>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl CommandStream {
    /// A stream fed through the returned sender, for connections that produce their
    /// lines some other way (a whole output at once, a test's script). Dropping the
    /// sender ends the stream.
    #[must_use]
    pub fn fed(capacity: usize) -> (mpsc::Sender<StreamEvent>, Self) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stream = Self {
            events: rx,
            stop: None,
            task: None,
        };
        (tx, stream)
    }

    /// A stream of events known up front (a command that already ran to its end).
    #[must_use]
    pub fn of(events: Vec<StreamEvent>) -> Self {
        let (tx, stream) = Self::fed(events.len());
        for event in events {
            let _ = tx.try_send(event);
        }
        stream
    }

    /// The next line or the end; `None` once the end has been delivered.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        self.events.recv().await
    }

    /// Stops streaming: sends EOF, closes the channel, and waits (a few seconds at most)
    /// for that to be done.
    pub async fn stop(mut self) {
        // Unblocks a reader task waiting for room in the queue.
        self.events.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for CommandStream {
    fn drop(&mut self) {
        // The task sees the stop (or the dropped sender) and closes the channel itself:
        // `close()` is async and cannot run here.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Session {
    /// Runs `command` (sent as is: wrap it yourself, e.g. with `sudo`) on a new channel
    /// and streams its output as lines.
    ///
    /// With `keep_stdin_open`, the command's standard input stays open until the stream
    /// is stopped or dropped; a command can wait for that EOF to clean up after itself
    /// (`cat >/dev/null; kill …`). Otherwise EOF is sent at once.
    ///
    /// The channel is not counted against the connection's exec slots: a stream lives
    /// as long as the caller wants; keep them few per connection (sshd's `MaxSessions`).
    ///
    /// # Errors
    /// When the channel cannot be opened or the command cannot be started.
    pub async fn stream(
        &self,
        command: &str,
        keep_stdin_open: bool,
    ) -> Result<CommandStream, TransportError> {
        let channel = self.open_channel().await?;
        channel.exec(true, command.as_bytes().to_vec()).await?;
        if !keep_stdin_open {
            channel.eof().await?;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(pump(channel, tx, stop_rx));
        Ok(CommandStream {
            events: rx,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

/// Reads the channel until the command ends, the stream is stopped, or the reader is
/// gone; always closes the channel when it stops early.
async fn pump(
    mut channel: russh::Channel<russh::client::Msg>,
    tx: mpsc::Sender<StreamEvent>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut out = LineSplitter::default();
    let mut err = LineSplitter::default();
    let mut status = None;
    let mut signal = None;
    let mut stopped = false;
    loop {
        let msg = tokio::select! {
            biased;
            _ = &mut stop => { stopped = true; break; }
            msg = channel.wait() => msg,
        };
        let lines: Vec<StreamEvent> = match msg {
            Some(ChannelMsg::Data { data }) => out
                .push(&data)
                .into_iter()
                .map(StreamEvent::Stdout)
                .collect(),
            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => err
                .push(&data)
                .into_iter()
                .map(StreamEvent::Stderr)
                .collect(),
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                status = Some(exit_status);
                Vec::new()
            }
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                signal = Some(format!("{signal_name:?}"));
                Vec::new()
            }
            Some(_) => Vec::new(),
            None => break,
        };
        for line in lines {
            // A full queue parks here (backpressure); a stop still gets through.
            let sent = tokio::select! {
                biased;
                _ = &mut stop => { stopped = true; false }
                r = tx.send(line) => r.is_ok(),
            };
            if !sent {
                stopped = true;
                break;
            }
        }
        if stopped {
            break;
        }
    }
    if stopped {
        let _ = channel.eof().await;
        let _ = channel.close().await;
        return;
    }
    let tail: Vec<StreamEvent> = out
        .finish()
        .map(StreamEvent::Stdout)
        .into_iter()
        .chain(err.finish().map(StreamEvent::Stderr))
        .collect();
    for line in tail {
        let _ = tx.send(line).await;
    }
    let end = if status.is_none() && signal.is_none() {
        StreamEvent::Lost
    } else {
        StreamEvent::Exited { status, signal }
    };
    let _ = tx.send(end).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_chunks_and_the_tail_is_kept() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"one\ntw"), ["one"]);
        assert_eq!(s.push(b"o\r\nthree\n\nfo"), ["two", "three", ""]);
        assert_eq!(s.finish().as_deref(), Some("fo"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn runaway_lines_are_cut_and_bad_utf8_is_replaced() {
        let mut s = LineSplitter::default();
        let long = vec![b'x'; MAX_LINE + 10];
        let lines = s.push(&long);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(s.finish().map(|l| l.len()), Some(10));
        assert_eq!(s.push(b"a\xffb\n"), ["a\u{fffd}b"]);
    }
}
