//! The simulated sensor network: deterministic given a seed, and independent
//! of how the readings are later split into files.
//!
//! Each sensor's PM2.5 is its own baseline shaped by a two-peak daily cycle
//! (morning and evening traffic, local time UTC+1), a weekend dip and slow
//! random drift, plus city-wide smoke or inversion episodes that reach every
//! sensor with a per-sensor exposure, plus short local events: smoke (fires,
//! mostly fine particles) or dust (construction, road works, mostly coarse
//! particles); some sensors stand next to a building site that raises
//! coarse dust during working hours. PM10 follows PM2.5 with a coarse dust
//! share; temperature
//! and humidity follow the day. On top, the faults that real low-cost
//! sensors show: outages and gaps, stuck values, spikes, out-of-range codes,
//! negative readings, empty or garbage fields, and re-sent rows.

use std::f64::consts::PI;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::utc::{MICROS_PER_DAY, MICROS_PER_SECOND};

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    pub sensors: u32,
    pub days: u32,
    /// Days since 1970-01-01 of the first simulated day (UTC).
    pub first_day: i32,
    /// Seconds between two readings of a sensor.
    pub interval_secs: u32,
    pub seed: u64,
}

/// How a timestamp is written; sensors differ in firmware, faults add more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsForm {
    /// `2024-03-01T12:00:07Z`
    Zulu,
    /// `2024-03-01T12:00:07.000Z`
    ZuluMillis,
    /// `2024-03-01T12:00:07+00:00`
    ZeroOffset,
    /// An empty field.
    Missing,
    /// `N/A`
    NotATime,
    /// `2024-03-01T12:61:07Z`, a firmware bug.
    BadMinute,
}

/// A reading's concentration field as the sensor sent it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field {
    /// A number with one decimal.
    Number(f64),
    /// An empty field.
    Missing,
    /// Text a sensor sends instead of a number (`NaN`, `ERR`).
    Text(&'static str),
}

/// One row as uploaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub sensor: u32,
    /// The sensor left its id empty (a firmware reset).
    pub blank_sensor_id: bool,
    pub ts_us: i64,
    pub ts_form: TsForm,
    pub lat: f64,
    pub lon: f64,
    pub pm25: Field,
    pub pm10: Field,
    pub temperature_c: f64,
    pub humidity_pct: f64,
}

/// The id of sensor `index`: `aq-00042`.
pub fn sensor_id(index: u32) -> String {
    format!("aq-{index:05}")
}

/// Random streams: one per purpose and sensor, so adding a draw to one
/// never shifts another.
const STREAM_REGION: u64 = 1;
const STREAM_SENSOR: u64 = 2;

fn stream(seed: u64, purpose: u64, index: u64) -> Draw {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&purpose.to_le_bytes());
    key[16..24].copy_from_slice(&index.to_le_bytes());
    Draw(ChaCha8Rng::from_seed(key))
}

/// Draws from a ChaCha stream. The conversions are written out here (rather
/// than taken from rand's distributions) so that a given seed yields the
/// same data set whatever rand release is in the build.
struct Draw(ChaCha8Rng);

impl Draw {
    /// Uniform in [0, 1), from the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.unit() * f64::from(n)) as u32
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal by the Box–Muller transform.
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1], so ln is finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

/// Per-reading fault rates.
const SPIKE: f64 = 0.0008;
const OUT_OF_RANGE: f64 = 0.0002;
const NEGATIVE: f64 = 0.0006;
const MISSING_PM25: f64 = 0.0003;
const MISSING_PM10: f64 = 0.0003;
const NAN_PM25: f64 = 0.0002;
const GARBAGE_PM10: f64 = 0.0001;
const BLANK_ID: f64 = 0.0001;
const MISSING_TS: f64 = 0.0001;
const NOT_A_TIME: f64 = 0.0001;
const BAD_MINUTE: f64 = 0.0001;
const EXACT_COPY: f64 = 0.002;
/// A re-sent row whose value was corrected in between.
const CHANGED_COPY: f64 = 0.0003;

/// Per-sensor-day fault rates.
const FULL_DAY_OUTAGE: f64 = 0.01;
const GAP: f64 = 0.06;
const STUCK: f64 = 0.02;
const LOCAL_EVENT: f64 = 0.05;
/// Share of sensors next to a building site.
const NEAR_BUILDING_SITE: f64 = 0.15;
/// Chance that a city-wide episode starts on a given day.
const REGIONAL_EPISODE: f64 = 0.2;

/// Local time of the simulated city, hours east of UTC.
const UTC_OFFSET_HOURS: f64 = 1.0;

/// A local event near one sensor.
#[derive(Debug, Clone, Copy)]
enum Local {
    /// A fire: fine particles.
    Smoke,
    /// Construction or road works: coarse particles.
    Dust,
}

/// A city-wide episode: smoke or a winter inversion.
#[derive(Debug, Clone, Copy)]
struct RegionalEpisode {
    start_s: f64,
    duration_s: f64,
    peak_pm25: f64,
}

impl RegionalEpisode {
    /// A smooth rise and fall over the episode.
    fn at(&self, t_s: f64) -> f64 {
        let x = (t_s - self.start_s) / self.duration_s;
        if (0.0..1.0).contains(&x) {
            self.peak_pm25 * (PI * x).sin().powi(2)
        } else {
            0.0
        }
    }
}

/// City-wide state shared by all sensors.
pub struct Network {
    config: NetworkConfig,
    episodes: Vec<RegionalEpisode>,
    /// Day-to-day temperature anomaly, °C.
    weather: Vec<f64>,
}

/// One sensor's fixed traits and running state.
pub struct Sensor {
    index: u32,
    lat: f64,
    lon: f64,
    base_pm25: f64,
    coarse_ratio: f64,
    exposure: f64,
    /// Extra coarse dust during working hours, µg/m³ (0 away from sites).
    site_dust: f64,
    clock_offset_s: u32,
    ts_form: TsForm,
    drift: f64,
    draw: Draw,
}

impl Network {
    pub fn new(config: NetworkConfig) -> Network {
        let mut draw = stream(config.seed, STREAM_REGION, 0);
        let mut episodes = Vec::new();
        // Start a day early so the first day can open inside an episode.
        for day in -1..i64::from(config.days) {
            if draw.chance(REGIONAL_EPISODE) {
                let start_s = day as f64 * 86_400.0 + draw.range(0.0, 86_400.0);
                episodes.push(RegionalEpisode {
                    start_s,
                    duration_s: draw.range(4.0, 36.0) * 3_600.0,
                    peak_pm25: draw.range(30.0, 200.0),
                });
            }
        }
        let mut weather = Vec::with_capacity(config.days as usize);
        let mut anomaly = 0.0;
        for _ in 0..config.days {
            anomaly = 0.7 * anomaly + 2.0 * draw.normal();
            weather.push(anomaly);
        }
        Network {
            config,
            episodes,
            weather,
        }
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    pub fn sensor(&self, index: u32) -> Sensor {
        let mut draw = stream(self.config.seed, STREAM_SENSOR, u64::from(index));
        let industrial = draw.chance(0.1);
        let firmware = draw.unit();
        Sensor {
            index,
            lat: round_to(52.30 + draw.range(0.0, 0.12), 1e5),
            lon: round_to(4.80 + draw.range(0.0, 0.20), 1e5),
            base_pm25: if industrial {
                draw.range(18.0, 32.0)
            } else {
                draw.range(5.0, 14.0)
            },
            coarse_ratio: draw.range(1.3, 2.0),
            exposure: draw.range(0.5, 1.2),
            site_dust: if draw.chance(NEAR_BUILDING_SITE) {
                draw.range(100.0, 300.0)
            } else {
                0.0
            },
            clock_offset_s: draw.below(self.config.interval_secs.max(1)),
            ts_form: if firmware < 0.9 {
                TsForm::Zulu
            } else if firmware < 0.95 {
                TsForm::ZuluMillis
            } else {
                TsForm::ZeroOffset
            },
            drift: 0.0,
            draw,
        }
    }

    /// Appends the rows `sensor` uploads for simulated day `day` (0-based):
    /// its readings in time order, then the rows it re-sent.
    pub fn day_readings(&self, sensor: &mut Sensor, day: u32, out: &mut Vec<Reading>) {
        let interval = self.config.interval_secs.max(1);
        let steps = 86_400 / interval;
        let day_start_s = f64::from(day) * 86_400.0;
        let day_start_us = (i64::from(self.config.first_day) + i64::from(day)) * MICROS_PER_DAY;
        let weather = self.weather.get(day as usize).copied().unwrap_or(0.0);
        let weekday = (self.config.first_day + day as i32 + 3).rem_euclid(7); // Monday = 0
        let weekend = matches!(weekday, 5 | 6);

        let d = &mut sensor.draw;
        let outage = d.chance(FULL_DAY_OUTAGE);
        let gap = d
            .chance(GAP)
            .then(|| window(d, steps, interval, 3_600.0, 36_000.0));
        let stuck = d
            .chance(STUCK)
            .then(|| window(d, steps, interval, 3_600.0, 28_800.0));
        let local = d.chance(LOCAL_EVENT).then(|| {
            let (start, len) = window(d, steps, interval, 3_600.0, 21_600.0);
            let kind = if d.chance(0.5) {
                Local::Smoke
            } else {
                Local::Dust
            };
            (start, len, d.range(60.0, 400.0), kind)
        });

        let mut resent = Vec::new();
        let mut stuck_values: Option<(Field, Field, f64, f64)> = None;
        for step in 0..steps {
            let second_of_day = step * interval + sensor.clock_offset_s;
            let t_s = day_start_s + f64::from(second_of_day);
            let hour_local = (f64::from(second_of_day) / 3_600.0 + UTC_OFFSET_HOURS) % 24.0;

            // The drift and noise advance even while the sensor is offline,
            // so the air it measures afterwards is the same air.
            let d = &mut sensor.draw;
            sensor.drift = 0.995 * sensor.drift + 0.03 * d.normal();
            let regional: f64 = self.episodes.iter().map(|e| e.at(t_s)).sum();
            let (local_fine, local_coarse) = match local {
                Some((start, len, peak, kind)) if in_window(step, start, len) => {
                    let level = peak * (PI * f64::from(step - start) / f64::from(len)).sin();
                    match kind {
                        Local::Smoke => (level, 0.0),
                        Local::Dust => (0.1 * level, 2.0 * level),
                    }
                }
                _ => (0.0, 0.0),
            };
            let cycle = diurnal(hour_local) * if weekend { 0.85 } else { 1.0 };
            let pm25 = (sensor.base_pm25 * cycle * sensor.drift.exp()
                + regional * sensor.exposure
                + local_fine
                + 0.5 * d.normal())
            .max(0.0);
            let site = if weekday != 6 && (7.0..16.0).contains(&hour_local) {
                sensor.site_dust * (1.0 + 0.3 * d.normal()).max(0.0)
            } else {
                0.0
            };
            let dust = 4.0 + 3.0 * cycle + local_coarse + site + 1.0 * d.normal();
            let pm10 = (pm25 * sensor.coarse_ratio + dust).max(0.0);
            let temperature = 10.0
                + weather
                + 7.0 * (2.0 * PI * (hour_local - 9.0) / 24.0).sin()
                + 0.3 * d.normal();
            let humidity =
                (75.0 - 2.2 * (temperature - 10.0) + 3.0 * d.normal()).clamp(12.0, 100.0);
            let fault = d.unit();
            let copy = d.unit();

            if outage || gap.is_some_and(|(s, l)| in_window(step, s, l)) {
                continue;
            }
            let mut reading = Reading {
                sensor: sensor.index,
                blank_sensor_id: false,
                ts_us: day_start_us + i64::from(second_of_day) * MICROS_PER_SECOND,
                ts_form: sensor.ts_form,
                lat: sensor.lat,
                lon: sensor.lon,
                pm25: Field::Number(round_to(pm25, 10.0)),
                pm10: Field::Number(round_to(pm10, 10.0)),
                temperature_c: round_to(temperature, 10.0),
                humidity_pct: round_to(humidity, 10.0),
            };
            match stuck {
                Some((s, l)) if in_window(step, s, l) => {
                    let held = *stuck_values.get_or_insert((
                        reading.pm25,
                        reading.pm10,
                        reading.temperature_c,
                        reading.humidity_pct,
                    ));
                    (reading.pm25, reading.pm10) = (held.0, held.1);
                    (reading.temperature_c, reading.humidity_pct) = (held.2, held.3);
                }
                _ => stuck_values = None,
            }
            inject_fault(&mut reading, fault, &mut sensor.draw);

            if copy < EXACT_COPY {
                resent.push(reading.clone());
            } else if copy < EXACT_COPY + CHANGED_COPY
                && let Field::Number(v) = reading.pm25
            {
                let mut changed = reading.clone();
                changed.pm25 = Field::Number(round_to(v + 0.1, 10.0));
                resent.push(changed);
            }
            out.push(reading);
        }
        out.extend(resent);
    }
}

impl Sensor {
    pub fn index(&self) -> u32 {
        self.index
    }
}

/// A random window of the day in steps: (first step, length in steps).
fn window(d: &mut Draw, steps: u32, interval: u32, min_s: f64, max_s: f64) -> (u32, u32) {
    let start = d.below(steps);
    let len = (d.range(min_s, max_s) / f64::from(interval)).max(1.0) as u32;
    (start, len)
}

fn in_window(step: u32, start: u32, len: u32) -> bool {
    step >= start && step - start < len
}

/// Relative PM2.5 level over the local day: peaks near 08:00 and 19:30,
/// lowest before dawn.
fn diurnal(hour: f64) -> f64 {
    let bump = |center: f64, width: f64| {
        // Distance on the 24-hour circle, so 23:00 is near 01:00.
        let delta = (hour - center + 36.0) % 24.0 - 12.0;
        (-0.5 * (delta / width).powi(2)).exp()
    };
    0.9 + 0.45 * bump(8.0, 1.5) + 0.6 * bump(19.5, 2.5) - 0.3 * bump(4.0, 2.5)
}

fn round_to(value: f64, steps_per_unit: f64) -> f64 {
    (value * steps_per_unit).round() / steps_per_unit
}

/// Applies at most one per-reading fault, chosen by `u` in [0, 1).
fn inject_fault(reading: &mut Reading, u: f64, d: &mut Draw) {
    let mut threshold = 0.0;
    let mut next = |rate: f64| {
        threshold += rate;
        u < threshold
    };
    if next(SPIKE) {
        if let Field::Number(v) = reading.pm25 {
            reading.pm25 = Field::Number(round_to(v.max(5.0) * d.range(4.0, 25.0), 10.0));
        }
        if let Field::Number(v) = reading.pm10 {
            reading.pm10 = Field::Number(round_to(v.max(8.0) * d.range(3.0, 15.0), 10.0));
        }
    } else if next(OUT_OF_RANGE) {
        if d.chance(0.5) {
            reading.pm25 = Field::Number(1999.9);
        } else {
            reading.pm10 = Field::Number(2500.0);
        }
    } else if next(NEGATIVE) {
        let value = Field::Number(-round_to(d.range(0.1, 3.0), 10.0).max(0.1));
        if d.chance(0.5) {
            reading.pm25 = value;
        } else {
            reading.pm10 = value;
        }
    } else if next(MISSING_PM25) {
        reading.pm25 = Field::Missing;
    } else if next(MISSING_PM10) {
        reading.pm10 = Field::Missing;
    } else if next(NAN_PM25) {
        reading.pm25 = Field::Text("NaN");
    } else if next(GARBAGE_PM10) {
        reading.pm10 = Field::Text("ERR");
    } else if next(BLANK_ID) {
        reading.blank_sensor_id = true;
    } else if next(MISSING_TS) {
        reading.ts_form = TsForm::Missing;
    } else if next(NOT_A_TIME) {
        reading.ts_form = TsForm::NotATime;
    } else if next(BAD_MINUTE) {
        reading.ts_form = TsForm::BadMinute;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> NetworkConfig {
        NetworkConfig {
            sensors: 8,
            days: 3,
            first_day: 19_783, // 2024-03-01
            interval_secs: 60,
            seed,
        }
    }

    fn all_readings(network: &Network) -> Vec<Reading> {
        let mut out = Vec::new();
        for index in 0..network.config().sensors {
            let mut sensor = network.sensor(index);
            for day in 0..network.config().days {
                network.day_readings(&mut sensor, day, &mut out);
            }
        }
        out
    }

    #[test]
    fn same_seed_same_readings_other_seed_other_readings() {
        let a = all_readings(&Network::new(config(7)));
        let b = all_readings(&Network::new(config(7)));
        let c = all_readings(&Network::new(config(8)));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn readings_stay_inside_their_day_and_near_the_cadence() {
        let network = Network::new(config(1));
        let mut sensor = network.sensor(3);
        let mut out = Vec::new();
        network.day_readings(&mut sensor, 1, &mut out);
        let day_start = (19_783 + 1) * MICROS_PER_DAY;
        assert!(
            out.iter()
                .all(|r| (day_start..day_start + MICROS_PER_DAY).contains(&r.ts_us))
        );
        // At most one reading a minute plus re-sent rows, fewer with gaps.
        assert!(out.len() <= 1_440 + 1_440 / 100, "{}", out.len());
    }

    #[test]
    fn the_daily_cycle_peaks_at_rush_hours() {
        assert!(diurnal(8.0) > diurnal(13.0));
        assert!(diurnal(19.5) > diurnal(4.0));
        assert!((diurnal(0.0) - diurnal(24.0)).abs() < 1e-12);
    }
}
