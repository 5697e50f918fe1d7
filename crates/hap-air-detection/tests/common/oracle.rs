//! An independent computation of the job's outputs, in plain Rust over the
//! CSV text, written from the specification rather than from the job's
//! code: no DataFusion, no shared helpers, a float AQI formula with the
//! EPA table in µg/m³, and a different episode algorithm.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Expected {
    pub rows_read: u64,
    pub drops: BTreeMap<&'static str, u64>,
    /// (sensor, hour start µs) → (pm25 mean, pm10 mean, readings)
    pub hourly: BTreeMap<(String, i64), (f64, f64, u64)>,
    /// (sensor, day number) → (pm25 mean, pm10 mean, aqi25, aqi10, aqi, category, dominant)
    pub daily: BTreeMap<(String, i64), DailyRow>,
    /// (sensor, start µs) → (end µs, hours, peak aqi, peak pm25)
    pub alerts: BTreeMap<(String, i64), (i64, u32, u32, f64)>,
    pub sensors: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DailyRow {
    pub pm25_avg: f64,
    pub pm10_avg: f64,
    pub aqi_pm25: u32,
    pub aqi_pm10: u32,
    pub aqi: u32,
    pub category: &'static str,
    pub dominant: &'static str,
}

/// Reads every `.csv` file under `dir` (recursively) and computes the outputs.
pub fn compute(dir: &Path) -> Expected {
    let mut files = Vec::new();
    collect_csv(dir, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no CSV files under {}", dir.display());

    let mut expected = Expected::default();
    let drop = |reason: &'static str, e: &mut Expected| *e.drops.entry(reason).or_insert(0) += 1;
    // (sensor, ts) → the kept copy (pm25, pm10) and how many copies were seen.
    let mut distinct: BTreeMap<(String, i64), ((f64, f64), u64)> = BTreeMap::new();

    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (i_sensor, i_ts, i_pm25, i_pm10) = (at("sensor_id"), at("ts"), at("pm25"), at("pm10"));
        for line in lines {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), header.len(), "{line}");
            expected.rows_read += 1;
            let sensor = fields[i_sensor].trim();
            if sensor.is_empty() {
                drop("missing_sensor_id", &mut expected);
                continue;
            }
            let Ok(ts) = fields[i_ts].trim().parse::<jiff::Timestamp>() else {
                drop("missing_or_invalid_ts", &mut expected);
                continue;
            };
            let number = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            let Some(pm25) = number(fields[i_pm25]) else {
                drop("missing_or_invalid_pm25", &mut expected);
                continue;
            };
            let Some(pm10) = number(fields[i_pm10]) else {
                drop("missing_or_invalid_pm10", &mut expected);
                continue;
            };
            if pm25 < 0.0 || pm10 < 0.0 {
                drop("negative_concentration", &mut expected);
                continue;
            }
            if pm25 > 1000.0 {
                drop("pm25_above_1000", &mut expected);
                continue;
            }
            if pm10 > 2000.0 {
                drop("pm10_above_2000", &mut expected);
                continue;
            }
            let key = (sensor.to_string(), ts.as_microsecond());
            let entry = distinct.entry(key).or_insert(((pm25, pm10), 0));
            entry.1 += 1;
            // Keep the lowest pm25, then the lowest pm10.
            if (pm25, pm10) < entry.0 {
                entry.0 = (pm25, pm10);
            }
        }
    }
    let duplicates: u64 = distinct.values().map(|(_, copies)| copies - 1).sum();
    if duplicates > 0 {
        expected.drops.insert("duplicate", duplicates);
    }

    // Hourly and daily, each straight from the distinct readings.
    let mut hours: BTreeMap<(String, i64), Vec<(f64, f64)>> = BTreeMap::new();
    let mut days: BTreeMap<(String, i64), Vec<(f64, f64)>> = BTreeMap::new();
    for ((sensor, ts), (values, _)) in &distinct {
        hours
            .entry((sensor.clone(), ts.div_euclid(HOUR) * HOUR))
            .or_default()
            .push(*values);
        days.entry((sensor.clone(), ts.div_euclid(DAY)))
            .or_default()
            .push(*values);
    }
    let mean = |v: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
        v.iter().map(pick).sum::<f64>() / v.len() as f64
    };
    for (key, values) in &hours {
        expected.hourly.insert(
            key.clone(),
            (
                mean(values, |v| v.0),
                mean(values, |v| v.1),
                values.len() as u64,
            ),
        );
    }
    for (key, values) in &days {
        let pm25_avg = mean(values, |v| v.0);
        let pm10_avg = mean(values, |v| v.1);
        let aqi_pm25 = index(&PM25, (pm25_avg * 10.0 + 1e-9).floor() / 10.0);
        let aqi_pm10 = index(&PM10, (pm10_avg + 1e-9).floor());
        let aqi = aqi_pm25.max(aqi_pm10);
        expected.daily.insert(
            key.clone(),
            DailyRow {
                pm25_avg,
                pm10_avg,
                aqi_pm25,
                aqi_pm10,
                aqi,
                category: category(aqi),
                dominant: if aqi_pm10 > aqi_pm25 { "pm10" } else { "pm25" },
            },
        );
    }

    // Episodes: find each run's first hour, then walk forward.
    let high: BTreeMap<(String, i64), (u32, f64)> = expected
        .hourly
        .iter()
        .filter_map(|((sensor, hour), (pm25, _, _))| {
            let aqi = index(&PM25, (pm25 * 10.0 + 1e-9).floor() / 10.0);
            (aqi >= 151).then(|| ((sensor.clone(), *hour), (aqi, *pm25)))
        })
        .collect();
    for (sensor, hour) in high.keys() {
        if high.contains_key(&(sensor.clone(), hour - HOUR)) {
            continue; // not the first hour of its run
        }
        let mut end = *hour;
        let (mut peak_aqi, mut peak_pm25) = (0, f64::MIN);
        while let Some((aqi, pm25)) = high.get(&(sensor.clone(), end)) {
            peak_aqi = peak_aqi.max(*aqi);
            peak_pm25 = peak_pm25.max(*pm25);
            end += HOUR;
        }
        let hours = ((end - hour) / HOUR) as u32;
        if hours >= 2 {
            expected
                .alerts
                .insert((sensor.clone(), *hour), (end, hours, peak_aqi, peak_pm25));
        }
    }
    expected.sensors = distinct
        .keys()
        .map(|(sensor, _)| sensor.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    expected
}

fn collect_csv(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_csv(&path, out);
        } else if path.extension().is_some_and(|e| e == "csv") {
            out.push(path);
        }
    }
}

/// EPA-454/B-24-002 Table 6, as printed: (C_lo, C_hi, I_lo, I_hi) in µg/m³.
const PM25: [(f64, f64, f64, f64); 6] = [
    (0.0, 9.0, 0.0, 50.0),
    (9.1, 35.4, 51.0, 100.0),
    (35.5, 55.4, 101.0, 150.0),
    (55.5, 125.4, 151.0, 200.0),
    (125.5, 225.4, 201.0, 300.0),
    (225.5, 325.4, 301.0, 500.0),
];
const PM10: [(f64, f64, f64, f64); 6] = [
    (0.0, 54.0, 0.0, 50.0),
    (55.0, 154.0, 51.0, 100.0),
    (155.0, 254.0, 101.0, 150.0),
    (255.0, 354.0, 151.0, 200.0),
    (355.0, 424.0, 201.0, 300.0),
    (425.0, 604.0, 301.0, 500.0),
];

/// Equation 1 on an already truncated concentration.
pub fn index(table: &[(f64, f64, f64, f64); 6], c: f64) -> u32 {
    for &(c_lo, c_hi, i_lo, i_hi) in table {
        // A small slack absorbs binary noise in the truncated value.
        if c <= c_hi + 1e-9 {
            return ((i_hi - i_lo) / (c_hi - c_lo) * (c - c_lo) + i_lo).round() as u32;
        }
    }
    500
}

pub fn category(aqi: u32) -> &'static str {
    if aqi <= 50 {
        "Good"
    } else if aqi <= 100 {
        "Moderate"
    } else if aqi <= 150 {
        "Unhealthy for Sensitive Groups"
    } else if aqi <= 200 {
        "Unhealthy"
    } else if aqi <= 300 {
        "Very Unhealthy"
    } else {
        "Hazardous"
    }
}
