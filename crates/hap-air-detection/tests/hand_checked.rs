//! A small input whose every output value was worked out by hand from the
//! specification (the arithmetic is in the comments), covering each
//! cleaning rule, the duplicate choice, offsets, partitions and episodes.

mod common;

use std::collections::BTreeMap;

use common::{bin, counts, floats, instants, ints, read_table, run_ok, strings, summary};
use datafusion::arrow::array::RecordBatch;

/// Columns in a non-canonical order plus an extra column, to show columns
/// are taken by name.
const HEADER: &str = "ts,sensor_id,pm10,pm25,lat,lon,temperature_c,humidity_pct,battery_v";

const FILE_A: &str = "\
2024-03-01T00:00:00Z,s1,20.0,10.0,52.3,4.9,8.0,80,3.7
2024-03-01T00:30:00Z,s1,40.0,20.0,52.3,4.9,8.0,80,3.7
2024-03-01T00:30:00Z,s1,10.0,25.0,52.3,4.9,8.0,80,3.7
2024-03-01T00:30:00+00:00,\"s1\",30.0,20.0,52.3,4.9,8.0,80,3.7
2024-03-01T01:00:00Z,s1,100,60.0,52.3,4.9,8.0,80,3.7
2024-03-01T02:15:00Z,s1,120,70.0,52.3,4.9,8.0,80,3.7
2024-03-01T03:00:00Z,s1,20,10.0,52.3,4.9,8.0,80,3.7
2024-03-01T05:00:00Z,s1,300,200,52.3,4.9,8.0,80,3.7
2024-03-01T06:00:00Z,s1,2000.0,1000.0,52.3,4.9,8.0,80,3.7
";

const FILE_B: &str = "\
2024-03-01T07:00:00Z,,5.0,5.0,52.3,4.9,8.0,80,3.7
2024-03-01T07:00:00Z,   ,5.0,5.0,52.3,4.9,8.0,80,3.7
2024-03-01T07:00:00,s1,5.0,5.0,52.3,4.9,8.0,80,3.7
,s1,5.0,5.0,52.3,4.9,8.0,80,3.7
not-a-time,s1,3000,-5,52.3,4.9,8.0,80,3.7
2024-03-01T07:00:00Z,s1,10,,52.3,4.9,8.0,80,3.7
2024-03-01T07:00:00Z,s1,10,abc,52.3,4.9,8.0,80,3.7
2024-03-01T07:00:00Z,s1,NaN,5,52.3,4.9,8.0,80,3.7
2024-03-01T07:00:00Z,s1,10,-0.5,52.3,4.9,8.0,80,3.7
2024-03-01T07:00:00Z,s1,-1,5,52.3,4.9,8.0,80,3.7
2024-03-01T07:00:00Z,s1,10,1000.1,52.3,4.9,8.0,80,3.7
2024-03-01T07:00:00Z,s1,2000.5,5,52.3,4.9,8.0,80,3.7
2024-03-01T23:30:00Z,s2,54,9.0,52.3,4.9,8.0,80,3.7
2024-03-02T00:30:00+01:00,s2,54,9.0,52.3,4.9,8.0,80,3.7
2024-03-02T00:10:00Z,s2,55,9.1,52.3,4.9,8.0,80,3.7
2024-03-02T00:20:00Z,s2,55,9.1,52.3,4.9,8.0,80,3.7
";

const H: i64 = 3_600_000_000;
/// 2024-03-01T00:00:00Z in µs.
const MARCH_1: i64 = 1_709_251_200_000_000;

fn by_key<K: Ord, V>(rows: Vec<(K, V)>) -> BTreeMap<K, V> {
    rows.into_iter().collect()
}

fn rows(table: Vec<(String, RecordBatch)>, mut each: impl FnMut(&str, &RecordBatch, usize)) {
    for (date, batch) in &table {
        for i in 0..batch.num_rows() {
            each(date, batch, i);
        }
    }
}

#[test]
fn every_output_value_matches_the_hand_worked_example() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    std::fs::write(input.join("a.csv"), format!("{HEADER}\n{FILE_A}")).unwrap();
    std::fs::write(input.join("nested/b.csv"), format!("{HEADER}\r\n{FILE_B}")).unwrap();
    std::fs::write(input.join("README.txt"), "not data").unwrap();
    let output = dir.path().join("out");

    run_ok(bin().args([
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]));

    // Counts: 25 rows; each reason counted once per row, first rule wins
    // ("not-a-time" with -5 and 3000 counts as a bad timestamp). The three
    // copies of s1 at 00:30 (one written with +00:00) and s2's 23:30 sent
    // again as 00:30+01:00 make 3 duplicates.
    let s = summary(&output);
    assert_eq!(s["rows_read"], 25);
    assert_eq!(s["rows_kept"], 10);
    assert_eq!(s["rows_dropped"], 15);
    assert_eq!(
        s["drops"],
        serde_json::json!({
            "missing_sensor_id": 2,
            "missing_or_invalid_ts": 3,
            "missing_or_invalid_pm25": 2,
            "missing_or_invalid_pm10": 1,
            "negative_concentration": 2,
            "pm25_above_1000": 1,
            "pm10_above_2000": 1,
            "duplicate": 3
        })
    );
    assert_eq!(s["sensors"], 2);
    assert_eq!(
        s["outputs"],
        serde_json::json!({"hourly": 8, "aqi_daily": 3, "alerts": 2})
    );
    assert_eq!(s["input_files"], 2, "README.txt is not input");

    // Hourly: s1 at 00h keeps (10, 20) and, of the 00:30 copies (20, 40),
    // (25, 10) and (20, 30), the lowest pm25 then pm10: (20, 30).
    let mut hourly = Vec::new();
    rows(read_table(&output, "hourly"), |date, b, i| {
        hourly.push((
            (
                strings(b, "sensor_id").value(i).to_string(),
                instants(b, "hour").value(i),
            ),
            (
                date.to_string(),
                floats(b, "pm25_avg").value(i),
                floats(b, "pm10_avg").value(i),
                counts(b, "readings").value(i),
            ),
        ));
    });
    let d1 = "2024-03-01".to_string();
    let d2 = "2024-03-02".to_string();
    let want = by_key(vec![
        (("s1".into(), MARCH_1), (d1.clone(), 15.0, 25.0, 2)),
        (("s1".into(), MARCH_1 + H), (d1.clone(), 60.0, 100.0, 1)),
        (("s1".into(), MARCH_1 + 2 * H), (d1.clone(), 70.0, 120.0, 1)),
        (("s1".into(), MARCH_1 + 3 * H), (d1.clone(), 10.0, 20.0, 1)),
        (
            ("s1".into(), MARCH_1 + 5 * H),
            (d1.clone(), 200.0, 300.0, 1),
        ),
        (
            ("s1".into(), MARCH_1 + 6 * H),
            (d1.clone(), 1000.0, 2000.0, 1),
        ),
        (("s2".into(), MARCH_1 + 23 * H), (d1.clone(), 9.0, 54.0, 1)),
        (("s2".into(), MARCH_1 + 24 * H), (d2.clone(), 9.1, 55.0, 2)),
    ]);
    assert_eq!(by_key(hourly), want);

    // Daily, s1 on 03-01: PM2.5 (10+20+60+70+10+200+1000)/7 = 195.714 → 195.7
    //   → 99/99.9 × (195.7 − 125.5) + 201 = 270.57 → 271;
    //   PM10 (20+30+100+120+20+300+2000)/7 = 370 → 99/69 × 15 + 201 = 222.52 → 223.
    // s2 on 03-01: 9.0 → 50 and 54 → 50, a tie: PM2.5 dominates.
    // s2 on 03-02: 9.1 → 51 and 55 → 51.
    let mut daily = Vec::new();
    rows(read_table(&output, "aqi_daily"), |date, b, i| {
        let int = |name: &str| ints(b, name).value(i);
        let text = |name: &str| strings(b, name).value(i).to_string();
        daily.push((
            (text("sensor_id"), date.to_string()),
            (
                int("aqi_pm25"),
                int("aqi_pm10"),
                int("aqi"),
                text("category"),
                text("dominant"),
            ),
        ));
    });
    let want = by_key(vec![
        (
            ("s1".into(), d1.clone()),
            (271, 223, 271, "Very Unhealthy".into(), "pm25".into()),
        ),
        (
            ("s2".into(), d1.clone()),
            (50, 50, 50, "Good".into(), "pm25".into()),
        ),
        (
            ("s2".into(), d2.clone()),
            (51, 51, 51, "Moderate".into(), "pm25".into()),
        ),
    ]);
    assert_eq!(by_key(daily), want);

    // Alerts: s1 01h (60 → 154) and 02h (70 → 161) form one episode, ended
    // by 03h (10 µg/m³); 05h (200 → 275) and 06h (1000 → 500) form another
    // after the empty 04h. Kept: 1000 is not above the limit.
    let mut alerts = Vec::new();
    rows(read_table(&output, "alerts"), |date, b, i| {
        let ts = |name: &str| instants(b, name).value(i);
        let int = |name: &str| ints(b, name).value(i);
        alerts.push((
            date.to_string(),
            ts("start"),
            ts("end"),
            int("hours"),
            int("peak_aqi"),
            floats(b, "peak_pm25").value(i),
        ));
    });
    alerts.sort_by_key(|a| a.1);
    assert_eq!(
        alerts,
        vec![
            (d1.clone(), MARCH_1 + H, MARCH_1 + 3 * H, 2, 161, 70.0),
            (d1.clone(), MARCH_1 + 5 * H, MARCH_1 + 7 * H, 2, 500, 1000.0),
        ]
    );
}

/// An episode that crosses midnight, with its hours in two files: it is one
/// episode, filed under the day it began.
/// 23h: PM2.5 80 → 49/69.9 × (80 − 55.5) + 151 = 168.17 → 168;
/// 00h: PM2.5 100 → 49/69.9 × (100 − 55.5) + 151 = 182.19 → 182;
/// 01h: PM2.5 10 → 42, which ends it.
#[test]
fn an_episode_across_midnight_and_files_is_one_row_under_its_first_day() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let row = |ts: &str, pm25: &str| format!("{ts},s3,20,{pm25},52.3,4.9,8.0,80,3.7\n");
    std::fs::write(
        input.join("day1.csv"),
        format!("{HEADER}\n{}", row("2024-03-01T23:10:00Z", "80")),
    )
    .unwrap();
    std::fs::write(
        input.join("day2.csv"),
        format!(
            "{HEADER}\n{}{}",
            row("2024-03-02T00:10:00Z", "100"),
            row("2024-03-02T01:10:00Z", "10")
        ),
    )
    .unwrap();
    let output = dir.path().join("out");
    run_ok(bin().args([
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]));

    let mut alerts = Vec::new();
    rows(read_table(&output, "alerts"), |date, b, i| {
        let ts = |name: &str| instants(b, name).value(i);
        let int = |name: &str| ints(b, name).value(i);
        alerts.push((
            date.to_string(),
            ts("start"),
            ts("end"),
            int("hours"),
            int("peak_aqi"),
        ));
    });
    assert_eq!(
        alerts,
        vec![(
            "2024-03-01".to_string(),
            MARCH_1 + 23 * H,
            MARCH_1 + 25 * H,
            2,
            182
        )]
    );
}

/// Padding a CSV writer put around fields is not part of the values: " s9 "
/// is sensor s9 (so its re-sent reading is a duplicate), " 20 " is 20 and a
/// padded timestamp is still a timestamp.
#[test]
fn padded_fields_are_read_as_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(
        input.join("padded.csv"),
        format!(
            "{HEADER}\n\
             2024-03-01T00:00:00Z,s9,20,10,52.3,4.9,8.0,80,3.7\n \
             2024-03-01T00:00:00Z , s9 , 20 , 10 ,52.3,4.9,8.0,80,3.7\n \
             2024-03-01T00:10:00Z , s9 , 40 , 30 ,52.3,4.9,8.0,80,3.7\n"
        ),
    )
    .unwrap();
    let output = dir.path().join("out");
    run_ok(bin().args([
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]));

    let s = summary(&output);
    assert_eq!((&s["rows_kept"], &s["sensors"]), (&2.into(), &1.into()));
    assert_eq!(s["drops"]["duplicate"], 1);
    let mut hourly = Vec::new();
    rows(read_table(&output, "hourly"), |_, b, i| {
        hourly.push((
            strings(b, "sensor_id").value(i).to_string(),
            floats(b, "pm25_avg").value(i),
            counts(b, "readings").value(i),
        ));
    });
    // (10 + 30) / 2 = 20 µg/m³ over 2 readings.
    assert_eq!(hourly, vec![("s9".to_string(), 20.0, 2)]);
}
