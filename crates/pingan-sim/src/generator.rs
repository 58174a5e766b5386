//! The seeded event generator: an inhomogeneous Poisson process over simulated time (district
//! curve + 虹桥 nightlife stream), a subtype drawn from the hour's mix, a place, a channel (110
//! call or QR doorplate report), a description, repeat calls, and injected spikes, all merged in
//! time order.
//!
//! Everything is drawn from one ChaCha8 stream seeded by [`GeneratorSettings::seed`], and event ids
//! are UUIDv7 built from the simulated time and that stream, so the same configuration always
//! yields byte-identical events. Every event carries its intended [`Label`]; the label never
//! travels in the HTTP body or the Kafka record.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, Timelike, Utc};
use pingan_domain::area::AreaIndex;
use pingan_domain::events::{CallInput, GeoPoint, QrKind, QrScanInput};
use pingan_domain::qr::QrSigner;
use pingan_domain::taxonomy::Taxonomy;
use pingan_domain::time::to_shanghai;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::mix::{self, Mix, SubtypeSpec, Where};
use crate::place::{Places, PlacesError, Spot};
use crate::rates;
use crate::spike::Spike;
use crate::texts;

/// Share of valid calls whose caller rings again within minutes (DOMAIN §8.2 OTH_DUPLICATE:
/// same phone within 10 min and 200 m).
pub const DEFAULT_REPEAT_RATE: f64 = 0.05;

/// Which process produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// The district baseline.
    District,
    /// The 虹桥 nightlife stream.
    Nightlife,
    /// A repeat call about an earlier event.
    Repeat,
    /// An injected spike.
    Spike,
}

/// The generator's intent for one event: what it is and where, for the ledger and benchmarks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// Intended subtype code.
    pub subtype: String,
    /// Its category code.
    pub category: String,
    /// Intended town (where the incident was placed).
    pub town_code: String,
    /// Compound, when placed in one.
    pub compound_id: Option<String>,
    /// POI, when placed at one.
    pub poi_id: Option<String>,
    /// Which process produced it.
    pub stream: Stream,
    /// The spike's name, for injected events.
    pub spike: Option<String>,
    /// The earlier event a repeat call is about.
    pub repeat_of: Option<Uuid>,
}

/// What is sent: the ingest API body of a call or a QR report.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `POST /v1/calls` item.
    Call(CallInput),
    /// `POST /v1/qr-scans` body.
    Qr(QrScanInput),
}

/// One generated event.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    /// Stable id: a UUIDv7 of the simulated time, or for a QR report the id ingest stores it
    /// under (`qr_event_id` of the plate and the UUIDv7 the report carries).
    pub event_id: Uuid,
    /// Simulated time of the incident report.
    pub event_time: DateTime<FixedOffset>,
    /// Intended label.
    pub label: Label,
    /// What goes over the wire.
    pub body: Body,
}

impl SimEvent {
    /// `call` or `qr`.
    pub fn source(&self) -> &'static str {
        match self.body {
            Body::Call(_) => "call",
            Body::Qr(_) => "qr",
        }
    }

    /// Moves the event to `t` (live mode: stamp with the wall clock at send time).
    pub fn restamp(&mut self, t: DateTime<FixedOffset>) {
        self.event_time = t;
        if let Body::Call(c) = &mut self.body {
            c.received_at = t;
        }
    }
}

/// Generator settings.
#[derive(Debug, Clone)]
pub struct GeneratorSettings {
    /// Seed of the single random stream.
    pub seed: u64,
    /// Simulated start time.
    pub start: DateTime<FixedOffset>,
    /// Multiplier of the baseline volume (1.0 = ~1,300 events a day).
    pub scale: f64,
    /// Share of valid calls followed by a repeat call.
    pub repeat_rate: f64,
    /// Signs the doorplates of QR reports (must match the ingest's `[qr]` keys).
    pub signer: QrSigner,
    /// Spikes to inject.
    pub spikes: Vec<Spike>,
}

impl GeneratorSettings {
    /// Defaults for `seed` and `start`: 2019 volume, 5% repeat calls, no spikes.
    pub fn new(seed: u64, start: DateTime<FixedOffset>, signer: QrSigner) -> GeneratorSettings {
        GeneratorSettings {
            seed,
            start: to_shanghai(&start),
            scale: 1.0,
            repeat_rate: DEFAULT_REPEAT_RATE,
            signer,
            spikes: Vec::new(),
        }
    }
}

/// Why a generator could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// The reference data is unusable.
    #[error(transparent)]
    Places(#[from] PlacesError),
    /// A spike names an unknown subtype or area.
    #[error("spike {name:?}: {problem}")]
    Spike {
        /// The spike.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The scale is not a positive finite number.
    #[error("scale must be a positive number, got {0}")]
    Scale(f64),
}

/// The generator: an endless, time-ordered iterator of [`SimEvent`]s.
#[derive(Debug)]
pub struct Generator {
    rng: ChaCha8Rng,
    places: Places,
    mix: Mix,
    signer: QrSigner,
    scale: f64,
    repeat_rate: f64,
    /// Time of the last baseline candidate of the thinning process.
    clock: DateTime<FixedOffset>,
    /// The next accepted baseline arrival, once drawn.
    next_base: Option<(DateTime<FixedOffset>, Stream)>,
    /// Repeats and spike events waiting for their time, keyed by (ms, sequence).
    pending: BTreeMap<(i64, u64), SimEvent>,
    seq: u64,
    call_serial: u64,
    nightlife: WeightedIndex<f64>,
}

/// Categories' Chinese names as operators type them in the hint field.
fn operator_hint(category: &str) -> Option<String> {
    Taxonomy::builtin()
        .category(category)
        .map(|c| c.name_zh.trim_end_matches('类').to_owned())
}

impl Generator {
    /// A generator over the built-in reference data.
    pub fn new(config: GeneratorSettings) -> Result<Generator, GeneratorError> {
        Generator::with_areas(config, AreaIndex::builtin())
    }

    /// A generator over `areas`.
    pub fn with_areas(
        config: GeneratorSettings,
        areas: &'static AreaIndex,
    ) -> Result<Generator, GeneratorError> {
        if !(config.scale.is_finite() && config.scale > 0.0) {
            return Err(GeneratorError::Scale(config.scale));
        }
        let places = Places::new(areas)?;
        let nightlife = WeightedIndex::new(mix::NIGHTLIFE.iter().map(|x| x.weight))
            .map_err(|_| PlacesError::Empty("nightlife mix"))?;
        let mut g = Generator {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            places,
            mix: Mix::new(),
            signer: config.signer,
            scale: config.scale,
            repeat_rate: config.repeat_rate.clamp(0.0, 0.5),
            clock: config.start,
            next_base: None,
            pending: BTreeMap::new(),
            seq: 0,
            call_serial: 0,
            nightlife,
        };
        // Spikes get their own stream so adding one does not change the baseline events.
        for (i, spike) in config.spikes.iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(
                config.seed ^ 0x5b1c_e000 ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            g.inject(spike, &mut rng)?;
        }
        Ok(g)
    }

    /// The place model (for examples and spike areas).
    pub fn places(&self) -> &Places {
        &self.places
    }

    fn inject(&mut self, spike: &Spike, rng: &mut ChaCha8Rng) -> Result<(), GeneratorError> {
        let err = |problem: String| GeneratorError::Spike {
            name: spike.name.clone(),
            problem,
        };
        let spec = mix::DISTRICT
            .iter()
            .chain(mix::NIGHTLIFE)
            .find(|x| x.code == spike.subtype)
            .copied()
            .ok_or_else(|| err(format!("unknown or unsupported subtype {}", spike.subtype)))?;
        let window_ms = spike.window.num_milliseconds().max(1);
        for _ in 0..spike.count {
            let spot = self
                .places
                .pick_in(&spike.area, rng)
                .ok_or_else(|| err(format!("unknown area {}", spike.area)))?;
            let t = spike.start + Duration::milliseconds(rng.random_range(0..window_ms));
            // Spike events do not consume the baseline's call serials, so injecting a spike
            // leaves every baseline event byte-identical.
            let serial = self.call_serial;
            let mut ev = self.build(rng, t, &spec, spot, Stream::Spike, false);
            self.call_serial = serial;
            if let Body::Call(c) = &mut ev.body {
                c.call_id = c.call_id.take().map(|id| format!("{id}-S"));
            }
            ev.label.spike = Some(spike.name.clone());
            self.push_pending(ev);
        }
        Ok(())
    }

    fn push_pending(&mut self, ev: SimEvent) {
        self.seq += 1;
        self.pending
            .insert((ev.event_time.timestamp_millis(), self.seq), ev);
    }

    /// Draws the next accepted arrival of the baseline process (thinning).
    fn draw_base(&mut self) -> (DateTime<FixedOffset>, Stream) {
        let max_per_sec = rates::max_per_hour(self.scale) / 3600.0;
        loop {
            let u: f64 = self.rng.random::<f64>().max(1e-12);
            let dt = -u.ln() / max_per_sec;
            self.clock += Duration::microseconds((dt * 1e6) as i64);
            let district = rates::district_per_hour(&self.clock, self.scale) / 3600.0;
            let night = rates::nightlife_per_hour(&self.clock, self.scale) / 3600.0;
            let x = self.rng.random::<f64>() * max_per_sec;
            if x < district {
                return (self.clock, Stream::District);
            }
            if x < district + night {
                return (self.clock, Stream::Nightlife);
            }
        }
    }

    fn event_id(rng: &mut ChaCha8Rng, t: &DateTime<FixedOffset>) -> Uuid {
        let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0);
        let bytes: [u8; 10] = rng.random();
        uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid()
    }

    fn phone(rng: &mut ChaCha8Rng) -> String {
        let prefixes = [
            "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
            "153", "155", "156", "157", "158", "159", "166", "176", "177", "180", "181", "186",
            "187", "188", "189", "199",
        ];
        format!(
            "{}{:08}",
            prefixes[rng.random_range(0..prefixes.len())],
            rng.random_range(0..100_000_000u32)
        )
    }

    /// Builds one event of `spec` at `t` in `spot`.
    fn build(
        &mut self,
        rng: &mut ChaCha8Rng,
        t: DateTime<FixedOffset>,
        spec: &SubtypeSpec,
        spot: Spot,
        stream: Stream,
        allow_qr: bool,
    ) -> SimEvent {
        // CAD clocks and ClickHouse keep whole seconds.
        let t = t.with_nanosecond(0).unwrap_or(t);
        let tax = Taxonomy::builtin();
        let category = tax
            .subtype(spec.code)
            .map_or_else(|| "OTH".to_owned(), |s| s.category.clone());
        let event_id = Self::event_id(rng, &t);
        let qr = allow_qr && rng.random_bool(self.mix.qr_probability(spec));
        let plate = if qr {
            self.places.plate_for(&spot, rng)
        } else {
            None
        };
        let description = texts::describe(spec.code, plate.is_some(), &spot, rng);
        let mut label = Label {
            subtype: spec.code.to_owned(),
            category: category.clone(),
            town_code: spot.town_code.clone(),
            compound_id: spot.compound.map(|c| c.id.clone()),
            poi_id: spot.poi.map(|p| p.id.clone()),
            stream,
            spike: None,
            repeat_of: None,
        };
        let body = match (plate, self.signer.sign("")) {
            (Some(plate), Some(_)) => {
                let plate_id = plate.plate_id.to_string();
                label.town_code = plate.town_code.to_owned();
                label.compound_id = plate.compound_id.map(str::to_owned);
                let kind = match category.as_str() {
                    "HELP" => QrKind::Help,
                    "DSP" => QrKind::Dispute,
                    "NONP" if spec.code == "NONP_CONSULT" => QrKind::Consult,
                    "NONP" => QrKind::Dispute,
                    _ => QrKind::Alarm,
                };
                Body::Qr(QrScanInput {
                    sig: self.signer.sign(&plate_id).unwrap_or_default(),
                    plate_id,
                    kind,
                    description: description
                        .chars()
                        .take(pingan_domain::events::limits::MAX_QR_DESCRIPTION)
                        .collect(),
                    contact_phone: rng.random_bool(0.6).then(|| Self::phone(rng)),
                    event_id: Some(event_id),
                    device_location: rng.random_bool(0.3).then_some(GeoPoint {
                        lat: (plate.lat * 1e6).round() / 1e6,
                        lon: (plate.lon * 1e6).round() / 1e6,
                    }),
                })
            }
            _ => Body::Call(self.call_input(rng, event_id, t, spec, &category, &spot, description)),
        };
        // A QR report is stored under the id ingest derives from the client's (CONTRACT §9):
        // the ledger and the Kafka target use that one, so both paths store the same id.
        let event_id = match &body {
            Body::Qr(q) => pingan_domain::events::qr_event_id(&q.plate_id, Some(event_id)),
            Body::Call(_) => event_id,
        };
        SimEvent {
            event_id,
            event_time: t,
            label,
            body,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn call_input(
        &mut self,
        rng: &mut ChaCha8Rng,
        event_id: Uuid,
        t: DateTime<FixedOffset>,
        spec: &SubtypeSpec,
        category: &str,
        spot: &Spot,
        description: String,
    ) -> CallInput {
        self.call_serial += 1;
        let invalid = spec.code == "OTH_INVALID";
        let point = GeoPoint {
            lat: spot.lat,
            lon: spot.lon,
        };
        let (location, address, town_code) = if invalid {
            // The carrier's location of a silent call, when the CAD got one.
            (rng.random_bool(0.35).then_some(point), None, None)
        } else {
            let nightlife = spec.place == Where::Nightlife;
            match rng.random::<f64>() {
                u if u < if nightlife { 0.85 } else { 0.70 } => (
                    Some(point),
                    rng.random_bool(0.8)
                        .then(|| spot.address(rng.random_bool(0.5))),
                    None,
                ),
                u if u < 0.84 => (
                    None,
                    rng.random_bool(0.5).then(|| spot.address(false)),
                    Some(spot.town_code.clone()),
                ),
                u if u < 0.92 => (None, Some(spot.address(rng.random_bool(0.5))), None),
                _ => (None, None, None),
            }
        };
        CallInput {
            event_id: Some(event_id),
            call_id: Some(format!(
                "310112-{}-{:06}",
                t.format("%Y%m%d"),
                self.call_serial % 1_000_000
            )),
            received_at: t,
            description,
            caller_phone: rng
                .random_bool(if invalid { 0.97 } else { 0.92 })
                .then(|| Self::phone(rng)),
            address,
            location,
            town_code,
            station_code: None,
            operator_category: (!invalid && rng.random_bool(0.06))
                .then(|| operator_hint(category))
                .flatten(),
            priority: (!invalid && rng.random_bool(0.3))
                .then(|| {
                    Taxonomy::builtin()
                        .subtype(spec.code)
                        .and_then(|s| s.default_priority)
                })
                .flatten(),
        }
    }

    /// Schedules repeat calls about `ev` (same caller, same place, minutes later).
    fn maybe_repeat(&mut self, ev: &SimEvent) {
        let Body::Call(call) = &ev.body else { return };
        if call.caller_phone.is_none()
            || ev.label.subtype == "OTH_INVALID"
            || !self.rng.random_bool(self.repeat_rate)
        {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.rng.random());
        let spot_like = Spot {
            town_code: ev.label.town_code.clone(),
            town_name: String::new(),
            compound: None,
            poi: None,
            lat: call.location.map_or(0.0, |p| p.lat),
            lon: call.location.map_or(0.0, |p| p.lon),
            road: String::new(),
            road2: String::new(),
            building: 1,
            room: 101,
            number: 1,
        };
        let mut t = ev.event_time;
        let chain = if rng.random_bool(0.25) { 2 } else { 1 };
        for _ in 0..chain {
            t += Duration::seconds(rng.random_range(60..540));
            let t = t.with_nanosecond(0).unwrap_or(t);
            let mut repeat = call.clone();
            let id = Self::event_id(&mut rng, &t);
            repeat.event_id = Some(id);
            repeat.received_at = t;
            repeat.call_id = call.call_id.as_ref().map(|c| format!("{c}-R"));
            repeat.description = texts::describe_repeat(&call.description, &spot_like, &mut rng);
            repeat.operator_category = None;
            let label = Label {
                subtype: "OTH_DUPLICATE".into(),
                category: "OTH".into(),
                stream: Stream::Repeat,
                repeat_of: Some(ev.event_id),
                spike: None,
                ..ev.label.clone()
            };
            self.push_pending(SimEvent {
                event_id: id,
                event_time: t,
                label,
                body: Body::Call(repeat),
            });
        }
    }

    fn next_baseline(&mut self, t: DateTime<FixedOffset>, stream: Stream) -> SimEvent {
        let mut rng = ChaCha8Rng::seed_from_u64(self.rng.random());
        match stream {
            Stream::Nightlife => {
                let spec = mix::NIGHTLIFE[self.nightlife.sample(&mut rng)];
                let spot = self.places.pick(spec.place, &mut rng);
                self.build(&mut rng, t, &spec, spot, Stream::Nightlife, false)
            }
            _ => {
                let weights = self.mix.weights_at(&t);
                let spec = match WeightedIndex::new(&weights) {
                    Ok(w) => mix::DISTRICT[w.sample(&mut rng)],
                    Err(_) => mix::DISTRICT[0],
                };
                let spot = self.places.pick(spec.place, &mut rng);
                self.build(&mut rng, t, &spec, spot, Stream::District, true)
            }
        }
    }

    /// The simulated time of the next event without consuming it.
    pub fn peek_time(&mut self) -> DateTime<FixedOffset> {
        let base = match self.next_base {
            Some((t, _)) => t,
            None => {
                let b = self.draw_base();
                self.next_base = Some(b);
                b.0
            }
        };
        match self.pending.first_key_value() {
            Some((&(ms, _), ev)) if ms <= base.timestamp_millis() => ev.event_time,
            _ => base,
        }
    }

    /// The next event in time order.
    pub fn next_event(&mut self) -> SimEvent {
        self.peek_time();
        let base_ms = self
            .next_base
            .map_or(i64::MAX, |(t, _)| t.timestamp_millis());
        if let Some(entry) = self.pending.first_entry()
            && entry.key().0 <= base_ms
        {
            return entry.remove();
        }
        let (t, stream) = match self.next_base.take() {
            Some(b) => b,
            None => self.draw_base(),
        };
        let ev = self.next_baseline(t, stream);
        self.maybe_repeat(&ev);
        ev
    }

    /// The wall clock in Shanghai time (for live runs).
    pub fn now() -> DateTime<FixedOffset> {
        to_shanghai(&Utc::now())
    }
}

impl Iterator for Generator {
    type Item = SimEvent;

    fn next(&mut self) -> Option<SimEvent> {
        Some(self.next_event())
    }
}
