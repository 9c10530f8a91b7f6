//! A one-line progress display on standard error, rewritten in place a few times a second.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::workload::{Entry, Window};

pub struct Progress {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Progress {
    pub fn start(entries: Vec<Arc<Entry>>, window: Window) -> Progress {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => eprint!("\r{}\x1b[K", line(&entries, &window)),
                }
            }
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        });
        Progress { stop, task }
    }

    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn line(entries: &[Arc<Entry>], window: &Window) -> String {
    let now = Instant::now();
    if now < window.measure_from {
        let left = window.measure_from - now;
        return format!("warming up, {:.1} s left", left.as_secs_f64());
    }
    let elapsed = now.min(window.end) - window.measure_from;
    let total = window.end - window.measure_from;
    let sum = |pick: fn(&Entry) -> u64| entries.iter().map(|e| pick(e)).sum::<u64>();
    let requests = sum(|e| e.stats.counters.requests.load(Relaxed));
    let shed = sum(|e| e.stats.counters.shed.load(Relaxed));
    let errors = sum(|e| e.stats.counters.errors.load(Relaxed));
    let secs = elapsed.as_secs_f64().max(0.001);
    let width = 20;
    let done = ((elapsed.as_secs_f64() / total.as_secs_f64().max(0.001)) * width as f64) as usize;
    format!(
        "[{}{}] {:.1}/{:.1} s  {requests} requests  {:.0} req/s  shed {shed}  errors {errors}",
        "#".repeat(done.min(width)),
        " ".repeat(width - done.min(width)),
        elapsed.as_secs_f64(),
        total.as_secs_f64(),
        requests as f64 / secs,
    )
}
