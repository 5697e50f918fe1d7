//! Pollution episodes: runs of consecutive hours with an unhealthy PM2.5 index.
//!
//! An hour is *high* when its mean PM2.5, taken through the PM2.5 breakpoints,
//! gives an AQI of [`ALERT_AQI`] ("Unhealthy") or more. An episode is a run of
//! at least [`MIN_EPISODE_HOURS`] high hours, each exactly one hour after the
//! previous; an hour without readings therefore ends the run.

use crate::aqi::aqi_pm25;
use crate::utc::MICROS_PER_HOUR;

/// The lowest AQI of the "Unhealthy" category.
pub const ALERT_AQI: u16 = 151;

/// A single high hour is a blip, not an episode.
pub const MIN_EPISODE_HOURS: u32 = 2;

/// One hour of one sensor: the start of the UTC hour and the mean PM2.5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourlyPm25 {
    pub hour_start_us: i64,
    pub pm25_avg: f64,
}

/// One episode of one sensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    /// Start of the first high hour, µs since the Unix epoch (UTC).
    pub start_us: i64,
    /// End of the last high hour (its start + 1 h), µs since the Unix epoch.
    pub end_us: i64,
    pub hours: u32,
    pub peak_aqi: u16,
    /// The highest hourly PM2.5 mean inside the episode, untruncated.
    pub peak_pm25: f64,
}

/// Finds the episodes of one sensor. `hours` must be sorted by
/// `hour_start_us`, with one entry per hour that has readings.
pub fn detect_episodes(hours: impl IntoIterator<Item = HourlyPm25>) -> Vec<Episode> {
    let mut episodes = Vec::new();
    let mut current: Option<Episode> = None;

    for hour in hours {
        let aqi = aqi_pm25(hour.pm25_avg).unwrap_or(0);
        if aqi < ALERT_AQI {
            close(&mut current, &mut episodes);
            continue;
        }
        match current.as_mut() {
            Some(run) if run.end_us == hour.hour_start_us => {
                run.end_us += MICROS_PER_HOUR;
                run.hours += 1;
                run.peak_aqi = run.peak_aqi.max(aqi);
                run.peak_pm25 = run.peak_pm25.max(hour.pm25_avg);
            }
            _ => {
                // Either no run is open, or a gap in the hours broke it.
                close(&mut current, &mut episodes);
                current = Some(Episode {
                    start_us: hour.hour_start_us,
                    end_us: hour.hour_start_us + MICROS_PER_HOUR,
                    hours: 1,
                    peak_aqi: aqi,
                    peak_pm25: hour.pm25_avg,
                });
            }
        }
    }
    close(&mut current, &mut episodes);
    episodes
}

fn close(current: &mut Option<Episode>, episodes: &mut Vec<Episode>) {
    if let Some(run) = current.take()
        && run.hours >= MIN_EPISODE_HOURS
    {
        episodes.push(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = MICROS_PER_HOUR;

    /// Hours starting at `first` (in hours since the epoch), one per value.
    fn run(first: i64, values: &[f64]) -> Vec<HourlyPm25> {
        values
            .iter()
            .enumerate()
            .map(|(i, &pm25_avg)| HourlyPm25 {
                hour_start_us: (first + i as i64) * H,
                pm25_avg,
            })
            .collect()
    }

    #[test]
    fn two_high_hours_make_an_episode() {
        // 55.5 µg/m³ is the first PM2.5 value with AQI 151; 100.0 gives 182.
        let episodes = detect_episodes(run(10, &[20.0, 55.5, 100.0, 30.0]));
        assert_eq!(
            episodes,
            vec![Episode {
                start_us: 11 * H,
                end_us: 13 * H,
                hours: 2,
                peak_aqi: 182,
                peak_pm25: 100.0,
            }]
        );
    }

    #[test]
    fn a_single_high_hour_is_not_an_episode() {
        assert!(detect_episodes(run(0, &[10.0, 200.0, 10.0])).is_empty());
    }

    #[test]
    fn just_below_the_threshold_is_not_high() {
        // 55.49 truncates to 55.4 → AQI 150.
        assert!(detect_episodes(run(0, &[55.49, 55.49, 55.49])).is_empty());
    }

    #[test]
    fn a_missing_hour_breaks_the_episode() {
        let mut hours = run(0, &[80.0, 80.0]);
        hours.extend(run(3, &[80.0, 90.0, 95.0])); // hour 2 has no readings
        let episodes = detect_episodes(hours);
        assert_eq!(episodes.len(), 2);
        assert_eq!((episodes[0].start_us, episodes[0].end_us), (0, 2 * H));
        assert_eq!((episodes[1].start_us, episodes[1].end_us), (3 * H, 6 * H));
        assert_eq!(episodes[1].hours, 3);
        assert_eq!(episodes[1].peak_pm25, 95.0);
    }

    #[test]
    fn an_isolated_high_hour_after_a_gap_does_not_extend_a_run() {
        let mut hours = run(0, &[80.0, 80.0]);
        hours.extend(run(5, &[80.0]));
        let episodes = detect_episodes(hours);
        assert_eq!(episodes.len(), 1);
        assert_eq!(episodes[0].hours, 2);
    }

    #[test]
    fn an_episode_may_run_to_the_last_hour() {
        let episodes = detect_episodes(run(100, &[10.0, 300.0, 400.0]));
        assert_eq!(episodes.len(), 1);
        assert_eq!(episodes[0].peak_aqi, 500);
        assert_eq!(episodes[0].end_us, 103 * H);
    }
}
