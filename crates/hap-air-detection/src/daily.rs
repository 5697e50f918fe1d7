//! Daily means and the daily AQI of each sensor, derived from hour buckets.
//!
//! A day's mean is the sum of its hours' sums over the sum of their reading
//! counts, which is exactly the mean of the day's cleaned readings (not a
//! mean of hourly means, which would over-weight sparse hours).

use std::sync::Arc;

use crate::aqi::{CombinedIndex, combined_index};
use crate::episodes::{Episode, HourlyPm25, detect_episodes};
use crate::pipeline::HourBucket;
use crate::utc::day_number;

/// One sensor on one UTC day.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyAqi {
    pub sensor_id: Arc<str>,
    /// Days since 1970-01-01 (UTC).
    pub day: i32,
    pub readings: u64,
    pub pm25_avg: f64,
    pub pm10_avg: f64,
    pub index: CombinedIndex,
}

/// The daily rows of `buckets`, which must be sorted by (sensor, hour).
/// Days whose means have no index (impossible after cleaning, which drops
/// negative values) are skipped rather than given a made-up one.
pub fn daily_aqi(buckets: &[HourBucket]) -> Vec<DailyAqi> {
    buckets
        .chunk_by(|a, b| {
            a.sensor_id == b.sensor_id && day_number(a.hour_start_us) == day_number(b.hour_start_us)
        })
        .filter_map(|day| {
            let readings: u64 = day.iter().map(|b| b.readings).sum();
            let pm25_avg = day.iter().map(|b| b.pm25_sum).sum::<f64>() / readings as f64;
            let pm10_avg = day.iter().map(|b| b.pm10_sum).sum::<f64>() / readings as f64;
            let index = combined_index(pm25_avg, pm10_avg)?;
            Some(DailyAqi {
                sensor_id: Arc::clone(&day[0].sensor_id),
                day: day_number(day[0].hour_start_us),
                readings,
                pm25_avg,
                pm10_avg,
                index,
            })
        })
        .collect()
}

/// One episode, with the sensor it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorEpisode {
    pub sensor_id: Arc<str>,
    pub episode: Episode,
}

/// The episodes of every sensor in `buckets`, sorted by (sensor, hour).
pub fn sensor_episodes(buckets: &[HourBucket]) -> Vec<SensorEpisode> {
    buckets
        .chunk_by(|a, b| a.sensor_id == b.sensor_id)
        .flat_map(|sensor| {
            let hours = sensor.iter().map(|b| HourlyPm25 {
                hour_start_us: b.hour_start_us,
                pm25_avg: b.pm25_avg(),
            });
            detect_episodes(hours)
                .into_iter()
                .map(|episode| SensorEpisode {
                    sensor_id: Arc::clone(&sensor[0].sensor_id),
                    episode,
                })
        })
        .collect()
}

/// How many distinct sensors kept at least one reading.
pub fn sensor_count(buckets: &[HourBucket]) -> usize {
    buckets.chunk_by(|a, b| a.sensor_id == b.sensor_id).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aqi::Pollutant;
    use crate::utc::MICROS_PER_HOUR;

    fn bucket(sensor: &str, hour: i64, readings: u64, pm25_sum: f64, pm10_sum: f64) -> HourBucket {
        HourBucket {
            sensor_id: Arc::from(sensor),
            hour_start_us: hour * MICROS_PER_HOUR,
            readings,
            pm25_sum,
            pm10_sum,
        }
    }

    #[test]
    fn daily_means_weight_readings_not_hours() {
        // Hour 0: 3 readings of 10; hour 1: 1 reading of 50.
        // Mean of readings = 80/4 = 20; a mean of hourly means would be 30.
        let buckets = vec![
            bucket("a", 0, 3, 30.0, 60.0),
            bucket("a", 1, 1, 50.0, 100.0),
            bucket("a", 24, 2, 10.0, 20.0), // next day
            bucket("b", 0, 1, 8.0, 40.0),
        ];
        let days = daily_aqi(&buckets);
        assert_eq!(days.len(), 3);
        assert_eq!((days[0].day, days[0].readings), (0, 4));
        assert_eq!(days[0].pm25_avg, 20.0);
        assert_eq!(days[0].pm10_avg, 40.0);
        // PM2.5 20.0 → 49/26.3 × 10.9 + 51 = 71.3 → 71; PM10 40 → 50/54 × 40 = 37.0 → 37.
        assert_eq!(days[0].index.aqi, 71);
        assert_eq!(days[0].index.dominant, Pollutant::Pm25);
        assert_eq!(days[1].day, 1);
        assert_eq!(&*days[2].sensor_id, "b");
        assert_eq!(sensor_count(&buckets), 2);
    }

    #[test]
    fn episodes_are_per_sensor() {
        // Sensor a: two high hours; sensor b's single high hour directly
        // after a's must not join a's run.
        let buckets = vec![
            bucket("a", 10, 1, 80.0, 80.0),
            bucket("a", 11, 1, 90.0, 90.0),
            bucket("b", 12, 1, 90.0, 90.0),
        ];
        let episodes = sensor_episodes(&buckets);
        assert_eq!(episodes.len(), 1);
        assert_eq!(&*episodes[0].sensor_id, "a");
        assert_eq!(episodes[0].episode.start_us, 10 * MICROS_PER_HOUR);
        assert_eq!(episodes[0].episode.end_us, 12 * MICROS_PER_HOUR);
    }
}
