//! The simulation driver: pulls events from the [`Generator`], paces them against the wall
//! clock, batches them for the [`Target`], keeps a bounded number of requests in flight, and
//! reports progress.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::generator::{Generator, SimEvent};
use crate::ledger::Ledger;
use crate::target::{Stats, StatsSnapshot, Target};

/// How simulated time maps to the wall clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Simulated time runs `x` times faster than real time, following the daily curve.
    Speedup(f64),
    /// A steady `n` events per second, whatever the simulated hour.
    Rate(f64),
    /// As fast as the target takes them.
    Fast,
}

/// Run settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Pacing.
    pub pacing: Pacing,
    /// Stop after this many events.
    pub count: Option<u64>,
    /// Stop after this much wall time.
    pub duration: Option<Duration>,
    /// Stop when the simulated clock reaches this time (bulk history).
    pub until: Option<DateTime<FixedOffset>>,
    /// Stamp events with the wall clock at send time instead of the simulated time (live demo:
    /// the simulated clock still drives the mix and the rate).
    pub wall_clock: bool,
    /// Most requests in flight at once.
    pub concurrency: usize,
    /// How often to call the progress callback.
    pub progress_every: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            pacing: Pacing::Fast,
            count: None,
            duration: None,
            until: None,
            wall_clock: false,
            concurrency: 4,
            progress_every: Duration::from_secs(5),
        }
    }
}

/// A progress report.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Totals so far.
    pub stats: StatsSnapshot,
    /// Wall time since the start.
    pub elapsed: Duration,
    /// Events per second acknowledged over the last interval.
    pub rate: f64,
    /// Simulated clock of the last generated event.
    pub sim_time: DateTime<FixedOffset>,
    /// Estimated time left, when the end is known.
    pub eta: Option<Duration>,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "sent {} acked {} rejected {} gave-up {} retries {} | {:.1} ev/s | sim {} | {:.0}s elapsed",
            s.sent,
            s.acked,
            s.rejected,
            s.gave_up,
            s.retries,
            self.rate,
            self.sim_time.format("%Y-%m-%d %H:%M"),
            self.elapsed.as_secs_f64()
        )?;
        if let Some(eta) = self.eta {
            write!(f, " | ETA {:.0}s", eta.as_secs_f64())?;
        }
        Ok(())
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    /// Totals.
    pub stats: StatsSnapshot,
    /// Wall time of the run.
    pub elapsed_secs: f64,
    /// First simulated event time.
    pub first_event: Option<DateTime<FixedOffset>>,
    /// Last simulated event time.
    pub last_event: Option<DateTime<FixedOffset>>,
    /// Whether the run was stopped by the shutdown token.
    pub interrupted: bool,
}

impl RunReport {
    /// Acknowledged events per wall second.
    pub fn acked_per_sec(&self) -> f64 {
        if self.elapsed_secs > 0.0 {
            self.stats.acked as f64 / self.elapsed_secs
        } else {
            0.0
        }
    }
}

/// Sleeps until `deadline` or shutdown; false on shutdown.
async fn sleep_until(deadline: Instant, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep_until(deadline.into()) => true,
    }
}

/// Runs the simulation until the count, duration or simulated end is reached, or `shutdown`.
/// In-flight requests are always finished (their retries stop early on shutdown).
pub async fn run(
    generator: &mut Generator,
    target: &Target,
    options: &RunOptions,
    ledger: &Ledger,
    shutdown: &CancellationToken,
    mut on_progress: impl FnMut(&Progress),
) -> RunReport {
    let stats = Arc::new(Stats::default());
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    let sim_start = generator.peek_time();
    let mut first_event = None;
    let mut last_event = None;
    let mut batch: Vec<SimEvent> = Vec::with_capacity(target.batch_size());
    let mut generated: u64 = 0;
    let mut next_progress = started + options.progress_every;
    let mut last_acked = (started, 0u64);
    let mut interrupted = false;

    let dispatch = |batch: Vec<SimEvent>,
                    tasks: &mut JoinSet<()>,
                    permit: tokio::sync::OwnedSemaphorePermit| {
        let (target, ledger, stats, shutdown) = (
            target.clone(),
            ledger.clone(),
            stats.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            target.deliver(batch, ledger, stats, shutdown).await;
            drop(permit);
        });
    };

    loop {
        if options.count.is_some_and(|c| generated >= c)
            || options.duration.is_some_and(|d| started.elapsed() >= d)
        {
            break;
        }
        if shutdown.is_cancelled() {
            interrupted = true;
            break;
        }
        let t = generator.peek_time();
        if options.until.is_some_and(|u| t >= u) {
            break;
        }
        // Pacing: when is this event due on the wall clock?
        let due = match options.pacing {
            Pacing::Fast => None,
            Pacing::Speedup(x) => {
                let sim = (t - sim_start).to_std().unwrap_or_default();
                Some(started + sim.div_f64(x.max(1e-9)))
            }
            Pacing::Rate(r) => {
                Some(started + Duration::from_secs_f64(generated as f64 / r.max(1e-9)))
            }
        };
        if let Some(due) = due
            && due > Instant::now() + Duration::from_millis(20)
        {
            // Nothing more is due right now: ship what we have instead of letting it wait.
            if !batch.is_empty() {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                dispatch(std::mem::take(&mut batch), &mut tasks, permit);
            }
            let wake = due.min(next_progress);
            if !sleep_until(wake, shutdown).await {
                interrupted = true;
                break;
            }
        }
        if Instant::now() >= next_progress {
            let snap = stats.snapshot();
            let now = Instant::now();
            let rate = (snap.acked - last_acked.1) as f64
                / now.duration_since(last_acked.0).as_secs_f64().max(1e-3);
            last_acked = (now, snap.acked);
            let eta = options.count.and_then(|c| {
                let per_sec = snap.sent as f64 / started.elapsed().as_secs_f64().max(1e-3);
                (per_sec > 0.0)
                    .then(|| Duration::from_secs_f64(c.saturating_sub(snap.sent) as f64 / per_sec))
            });
            on_progress(&Progress {
                stats: snap,
                elapsed: started.elapsed(),
                rate,
                sim_time: t,
                eta,
            });
            next_progress = now + options.progress_every;
        }
        if due.is_some_and(|d| d > Instant::now() + Duration::from_millis(20)) {
            continue;
        }
        let mut ev = generator.next_event();
        if options.wall_clock {
            ev.restamp(Generator::now());
        }
        first_event.get_or_insert(ev.event_time);
        last_event = Some(ev.event_time);
        generated += 1;
        stats
            .sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        batch.push(ev);
        if batch.len() >= target.batch_size() {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            dispatch(std::mem::take(&mut batch), &mut tasks, permit);
        }
        // Reap finished requests so the set stays small on long runs.
        while tasks.try_join_next().is_some() {}
    }
    if !batch.is_empty()
        && let Ok(permit) = permits.clone().acquire_owned().await
    {
        dispatch(std::mem::take(&mut batch), &mut tasks, permit);
    }
    while tasks.join_next().await.is_some() {}
    let report = RunReport {
        stats: stats.snapshot(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        first_event,
        last_event,
        interrupted,
    };
    on_progress(&Progress {
        stats: report.stats,
        elapsed: started.elapsed(),
        rate: report.acked_per_sec(),
        sim_time: last_event.unwrap_or(sim_start),
        eta: None,
    });
    report
}
