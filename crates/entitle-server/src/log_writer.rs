//! Where log lines go: a bounded queue drained by one thread that writes to stderr.
//!
//! Logging must never stop the server. Writing to stderr straight from a request or a worker
//! blocks that task when the reader stops reading (a full pipe), and a failed write (a closed
//! pipe, a full disk) used to panic inside the logging library and kill whichever task logged.
//! Here a task only puts its line in the queue: when the queue is full the line is dropped, and a
//! line the thread cannot write is dropped too; both are counted
//! (`entitle_log_lines_dropped_total{reason}`), never raised.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const LOG_LINES_DROPPED: &str = "entitle_log_lines_dropped_total";

/// Lines waiting for the writer thread at most; a burst beyond this is dropped, not waited for.
const QUEUE: usize = 8192;

/// How long the process waits at exit for queued lines to be written.
const FLUSH_WITHIN: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Counters {
    /// Queued and not yet written (or dropped) by the thread.
    pending: AtomicUsize,
    dropped_full: AtomicU64,
    dropped_failed: AtomicU64,
}

/// The `MakeWriter` handed to the log formatter.
#[derive(Clone)]
pub struct LogWriter {
    queue: Option<SyncSender<Vec<u8>>>,
    counters: Arc<Counters>,
}

/// Kept by `main`: when dropped, waits (briefly) until queued lines are written.
pub struct FlushGuard {
    counters: Arc<Counters>,
}

/// A writer to stderr that never blocks nor fails, and its flush guard.
pub fn stderr() -> (LogWriter, FlushGuard) {
    to(std::io::stderr())
}

/// Like [`stderr`], for any sink (tests write to a pipe or a full device).
pub fn to(sink: impl Write + Send + 'static) -> (LogWriter, FlushGuard) {
    let counters = Arc::new(Counters::default());
    let (sender, receiver) = sync_channel(QUEUE);
    let thread_counters = counters.clone();
    let queue = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || drain(receiver, sink, &thread_counters))
        .ok()
        .map(|_| sender);
    (
        LogWriter {
            queue,
            counters: counters.clone(),
        },
        FlushGuard { counters },
    )
}

fn drain(receiver: Receiver<Vec<u8>>, mut sink: impl Write, counters: &Counters) {
    let mut chunk = Vec::new();
    while let Ok(line) = receiver.recv() {
        // Whatever else is already queued goes out in the same write.
        let mut lines = 1;
        chunk.clear();
        chunk.extend_from_slice(&line);
        while chunk.len() < 64 * 1024 {
            match receiver.try_recv() {
                Ok(line) => {
                    chunk.extend_from_slice(&line);
                    lines += 1;
                }
                Err(_) => break,
            }
        }
        if sink.write_all(&chunk).and_then(|()| sink.flush()).is_err() {
            counters.dropped_failed.fetch_add(lines as u64, Ordering::Relaxed);
            metrics::counter!(LOG_LINES_DROPPED, "reason" => "write_failed").increment(lines as u64);
        }
        counters.pending.fetch_sub(lines, Ordering::Release);
    }
}

impl LogWriter {
    fn queue(&self, line: &[u8]) {
        let Some(queue) = &self.queue else {
            // No writer thread could be started: logging is off rather than in the way.
            self.dropped_full(1);
            return;
        };
        self.counters.pending.fetch_add(1, Ordering::Acquire);
        match queue.try_send(line.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.pending.fetch_sub(1, Ordering::Release);
                self.dropped_full(1);
            }
        }
    }

    fn dropped_full(&self, lines: u64) {
        self.counters.dropped_full.fetch_add(lines, Ordering::Relaxed);
        metrics::counter!(LOG_LINES_DROPPED, "reason" => "queue_full").increment(lines);
    }

    /// Lines dropped so far: (queue full, write failed).
    pub fn dropped(&self) -> (u64, u64) {
        (
            self.counters.dropped_full.load(Ordering::Relaxed),
            self.counters.dropped_failed.load(Ordering::Relaxed),
        )
    }
}

/// One event's line; the formatter writes it whole, then drops this.
pub struct Line(LogWriter);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.queue(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(self.clone())
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        let started = Instant::now();
        while self.counters.pending.load(Ordering::Acquire) > 0 && started.elapsed() < FLUSH_WITHIN {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that fails every write, like stderr on a full device or a closed pipe.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A sink that never returns, like a pipe nobody reads.
    struct Stuck;

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            std::thread::park();
            Ok(0)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn failed_writes_are_counted_not_raised() {
        let (writer, guard) = to(Broken);
        for _ in 0..10 {
            let mut line = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
            line.write_all(b"a line\n").unwrap();
        }
        drop(guard);
        let (full, failed) = writer.dropped();
        assert_eq!(full + failed, 10);
        assert!(failed > 0);
    }

    #[test]
    fn a_stuck_sink_never_blocks_the_caller() {
        let (writer, _guard) = to(Stuck);
        let started = Instant::now();
        // Long lines, so the thread's first (never finished) write takes only a few.
        let long = [b'x'; 1024];
        for _ in 0..(QUEUE + 1000) {
            let mut line = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
            line.write_all(&long).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        let (full, _) = writer.dropped();
        assert!(full >= 900, "lines beyond the queue are dropped: {full}");
        // The guard would wait FLUSH_WITHIN for a stuck sink; not dropping it here keeps the test short.
        std::mem::forget(_guard);
    }

    #[test]
    fn lines_reach_the_sink_in_order() {
        #[derive(Clone, Default)]
        struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Shared::default();
        let (writer, guard) = to(sink.clone());
        for n in 0..100 {
            let mut line = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
            writeln!(line, "{n}").unwrap();
        }
        drop(guard);
        let written = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..100).map(|n| format!("{n}\n")).collect();
        assert_eq!(written, expected);
        assert_eq!(writer.dropped(), (0, 0));
    }
}
