//! US EPA Air Quality Index for particulate matter.
//!
//! Source: U.S. EPA, *Technical Assistance Document for the Reporting of Daily
//! Air Quality – the Air Quality Index (AQI)*, EPA-454/B-24-002, May 2024.
//! Its Table 6 gives the breakpoints below (the 2024 revision lowered the top of
//! the PM2.5 "Good" row to 9.0 µg/m³), and its Equation 1 gives the linear
//! interpolation inside a breakpoint row:
//!
//! ```text
//! I = (I_hi - I_lo) / (BP_hi - BP_lo) * (C - BP_lo) + I_lo
//! ```
//!
//! Concentrations are truncated first (PM2.5 to 0.1 µg/m³, PM10 to 1 µg/m³),
//! and the index is rounded to the nearest integer. Above the top row the
//! index is capped at 500.

use std::fmt;

/// The highest index value; concentrations above the top breakpoint map here.
pub const AQI_MAX: u16 = 500;

/// Means arrive as binary floating point, so a true 9.1 may be stored as
/// 9.0999999999999996. Truncating that naively would move it into the row
/// below. This tolerance, in truncation steps, absorbs such representation
/// error while staying far below the 0.1 µg/m³ resolution of the method.
const TRUNCATION_TOLERANCE_STEPS: f64 = 1e-9;

/// A particulate pollutant with an AQI breakpoint table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pollutant {
    Pm25,
    Pm10,
}

impl Pollutant {
    /// The name used in the `dominant` output column.
    pub fn as_str(self) -> &'static str {
        match self {
            Pollutant::Pm25 => "pm25",
            Pollutant::Pm10 => "pm10",
        }
    }

    /// Truncation steps per µg/m³: PM2.5 keeps one decimal, PM10 none.
    fn steps_per_unit(self) -> f64 {
        match self {
            Pollutant::Pm25 => 10.0,
            Pollutant::Pm10 => 1.0,
        }
    }

    fn breakpoints(self) -> &'static [Breakpoint] {
        match self {
            Pollutant::Pm25 => &PM25_BREAKPOINTS,
            Pollutant::Pm10 => &PM10_BREAKPOINTS,
        }
    }
}

/// One row of the breakpoint table, with concentrations counted in
/// truncation steps (tenths of µg/m³ for PM2.5, whole µg/m³ for PM10), so
/// that lookups and interpolation run on exact integers.
#[derive(Debug, Clone, Copy)]
struct Breakpoint {
    conc_lo: u64,
    conc_hi: u64,
    aqi_lo: u16,
    aqi_hi: u16,
}

const fn row(conc_lo: u64, conc_hi: u64, aqi_lo: u16, aqi_hi: u16) -> Breakpoint {
    Breakpoint {
        conc_lo,
        conc_hi,
        aqi_lo,
        aqi_hi,
    }
}

/// PM2.5, 24-hour, in tenths of µg/m³ (EPA-454/B-24-002, Table 6).
const PM25_BREAKPOINTS: [Breakpoint; 6] = [
    row(0, 90, 0, 50),         // 0.0 – 9.0
    row(91, 354, 51, 100),     // 9.1 – 35.4
    row(355, 554, 101, 150),   // 35.5 – 55.4
    row(555, 1254, 151, 200),  // 55.5 – 125.4
    row(1255, 2254, 201, 300), // 125.5 – 225.4
    row(2255, 3254, 301, 500), // 225.5 – 325.4
];

/// PM10, 24-hour, in µg/m³ (EPA-454/B-24-002, Table 6).
const PM10_BREAKPOINTS: [Breakpoint; 6] = [
    row(0, 54, 0, 50),
    row(55, 154, 51, 100),
    row(155, 254, 101, 150),
    row(255, 354, 151, 200),
    row(355, 424, 201, 300),
    row(425, 604, 301, 500),
];

/// The AQI for a concentration in µg/m³, or `None` when the concentration is
/// negative or not a number (the index is undefined there).
pub fn aqi(pollutant: Pollutant, concentration_ug_m3: f64) -> Option<u16> {
    if concentration_ug_m3.is_nan() || concentration_ug_m3 < 0.0 {
        return None;
    }
    let steps =
        (concentration_ug_m3 * pollutant.steps_per_unit() + TRUNCATION_TOLERANCE_STEPS).floor();
    let table = pollutant.breakpoints();
    let top = table[table.len() - 1];
    // `as` saturates for huge values; anything past the table is capped anyway.
    let steps = steps as u64;
    if steps > top.conc_hi {
        return Some(AQI_MAX);
    }
    let row = table
        .iter()
        .find(|row| steps <= row.conc_hi)
        .expect("steps is within the table, and the rows are contiguous");
    Some(interpolate(row, steps))
}

/// Equation 1 with integer arithmetic, rounding half up, so no floating-point
/// error can move a result across a rounding boundary.
fn interpolate(row: &Breakpoint, steps: u64) -> u16 {
    let numerator = u64::from(row.aqi_hi - row.aqi_lo) * (steps - row.conc_lo);
    let denominator = row.conc_hi - row.conc_lo;
    let rounded = (2 * numerator + denominator) / (2 * denominator);
    row.aqi_lo + rounded as u16
}

/// The AQI for a PM2.5 concentration in µg/m³.
pub fn aqi_pm25(concentration_ug_m3: f64) -> Option<u16> {
    aqi(Pollutant::Pm25, concentration_ug_m3)
}

/// The AQI for a PM10 concentration in µg/m³.
pub fn aqi_pm10(concentration_ug_m3: f64) -> Option<u16> {
    aqi(Pollutant::Pm10, concentration_ug_m3)
}

/// The six AQI categories of EPA-454/B-24-002, Table 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Good,
    Moderate,
    UnhealthyForSensitiveGroups,
    Unhealthy,
    VeryUnhealthy,
    Hazardous,
}

impl Category {
    pub fn from_aqi(aqi: u16) -> Category {
        match aqi {
            0..=50 => Category::Good,
            51..=100 => Category::Moderate,
            101..=150 => Category::UnhealthyForSensitiveGroups,
            151..=200 => Category::Unhealthy,
            201..=300 => Category::VeryUnhealthy,
            _ => Category::Hazardous,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Good => "Good",
            Category::Moderate => "Moderate",
            Category::UnhealthyForSensitiveGroups => "Unhealthy for Sensitive Groups",
            Category::Unhealthy => "Unhealthy",
            Category::VeryUnhealthy => "Very Unhealthy",
            Category::Hazardous => "Hazardous",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The overall index of a day: the larger of the two pollutant indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CombinedIndex {
    pub aqi_pm25: u16,
    pub aqi_pm10: u16,
    pub aqi: u16,
    pub category: Category,
    /// The pollutant with the larger index; PM2.5 on a tie, being the finer
    /// and more harmful fraction.
    pub dominant: Pollutant,
}

/// Combines the PM2.5 and PM10 indexes of the same period, or `None` when
/// either concentration is negative or not a number.
pub fn combined_index(pm25_ug_m3: f64, pm10_ug_m3: f64) -> Option<CombinedIndex> {
    let aqi_pm25 = aqi_pm25(pm25_ug_m3)?;
    let aqi_pm10 = aqi_pm10(pm10_ug_m3)?;
    let (aqi, dominant) = if aqi_pm10 > aqi_pm25 {
        (aqi_pm10, Pollutant::Pm10)
    } else {
        (aqi_pm25, Pollutant::Pm25)
    };
    Some(CombinedIndex {
        aqi_pm25,
        aqi_pm10,
        aqi,
        category: Category::from_aqi(aqi),
        dominant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-checked against Table 6 of EPA-454/B-24-002: both edges of every
    /// row map to that row's index edges, and the first value past the top
    /// row maps to 500.
    #[test]
    fn pm25_every_breakpoint_edge() {
        let cases = [
            (0.0, 0),
            (9.0, 50),
            (9.1, 51),
            (35.4, 100),
            (35.5, 101),
            (55.4, 150),
            (55.5, 151),
            (125.4, 200),
            (125.5, 201),
            (225.4, 300),
            (225.5, 301),
            (325.4, 500),
            (325.5, 500),
            (1000.0, 500),
        ];
        for (concentration, expected) in cases {
            assert_eq!(
                aqi_pm25(concentration),
                Some(expected),
                "PM2.5 {concentration} µg/m³"
            );
        }
    }

    #[test]
    fn pm10_every_breakpoint_edge() {
        let cases = [
            (0.0, 0),
            (54.0, 50),
            (55.0, 51),
            (154.0, 100),
            (155.0, 101),
            (254.0, 150),
            (255.0, 151),
            (354.0, 200),
            (355.0, 201),
            (424.0, 300),
            (425.0, 301),
            (604.0, 500),
            (605.0, 500),
            (2000.0, 500),
        ];
        for (concentration, expected) in cases {
            assert_eq!(
                aqi_pm10(concentration),
                Some(expected),
                "PM10 {concentration} µg/m³"
            );
        }
    }

    /// Truncation happens before the lookup: values just under the next row
    /// stay in the lower row instead of being rounded up into the gap.
    #[test]
    fn truncates_before_lookup() {
        assert_eq!(aqi_pm25(9.09), Some(50));
        assert_eq!(aqi_pm25(35.49), Some(100));
        assert_eq!(aqi_pm25(55.45), Some(150));
        assert_eq!(aqi_pm25(325.49), Some(500));
        assert_eq!(aqi_pm10(54.9), Some(50));
        assert_eq!(aqi_pm10(154.99), Some(100));
        assert_eq!(aqi_pm10(604.9), Some(500));
    }

    /// Binary floating point stores 9.1 as 9.0999999999999996; such a mean
    /// must still land in the 9.1 row.
    #[test]
    fn tolerates_binary_representation_of_edges() {
        let nine_point_one = (9.0 + 9.2) / 2.0;
        assert_eq!(aqi_pm25(nine_point_one), Some(51));
        // This mean is 35.49999999999999 in binary: truncated without the
        // tolerance it would fall to 35.4 and an AQI of 100.
        let mean_of_tenths: f64 = [33.8, 35.4, 37.3].iter().sum::<f64>() / 3.0;
        assert!(mean_of_tenths < 35.5);
        assert_eq!(aqi_pm25(mean_of_tenths), Some(101));
    }

    /// Interior points worked by hand with Equation 1:
    /// PM2.5 12.0 → 49/26.3 × 2.9 + 51 = 56.40 → 56;
    /// PM2.5 40.0 → 49/19.9 × 4.5 + 101 = 112.08 → 112;
    /// PM2.5 100.0 → 49/69.9 × 44.5 + 151 = 182.19 → 182;
    /// PM2.5 4.5 → 50/9 × 4.5 = 25.0 → 25;
    /// PM10 100 → 49/99 × 45 + 51 = 73.27 → 73;
    /// PM10 400 → 99/69 × 45 + 201 = 265.57 → 266;
    /// PM10 500 → 199/179 × 75 + 301 = 384.38 → 384.
    #[test]
    fn interior_points_worked_by_hand() {
        assert_eq!(aqi_pm25(12.0), Some(56));
        assert_eq!(aqi_pm25(40.0), Some(112));
        assert_eq!(aqi_pm25(100.0), Some(182));
        assert_eq!(aqi_pm25(4.5), Some(25));
        assert_eq!(aqi_pm10(100.0), Some(73));
        assert_eq!(aqi_pm10(400.0), Some(266));
        assert_eq!(aqi_pm10(500.0), Some(384));
    }

    #[test]
    fn undefined_for_negative_or_nan() {
        assert_eq!(aqi_pm25(-0.1), None);
        assert_eq!(aqi_pm10(f64::NAN), None);
        assert_eq!(aqi_pm25(f64::INFINITY), Some(AQI_MAX));
    }

    #[test]
    fn category_edges() {
        let cases = [
            (0, "Good"),
            (50, "Good"),
            (51, "Moderate"),
            (100, "Moderate"),
            (101, "Unhealthy for Sensitive Groups"),
            (150, "Unhealthy for Sensitive Groups"),
            (151, "Unhealthy"),
            (200, "Unhealthy"),
            (201, "Very Unhealthy"),
            (300, "Very Unhealthy"),
            (301, "Hazardous"),
            (500, "Hazardous"),
        ];
        for (aqi, name) in cases {
            assert_eq!(Category::from_aqi(aqi).as_str(), name, "AQI {aqi}");
        }
    }

    #[test]
    fn combined_index_takes_the_larger_and_prefers_pm25_on_ties() {
        // PM2.5 12.0 → 56; PM10 100 → 73: PM10 dominates.
        let day = combined_index(12.0, 100.0).unwrap();
        assert_eq!((day.aqi_pm25, day.aqi_pm10, day.aqi), (56, 73, 73));
        assert_eq!(day.dominant, Pollutant::Pm10);
        assert_eq!(day.category, Category::Moderate);

        // PM2.5 9.0 → 50 and PM10 54 → 50: a tie goes to PM2.5.
        let tie = combined_index(9.0, 54.0).unwrap();
        assert_eq!((tie.aqi, tie.dominant), (50, Pollutant::Pm25));
        assert_eq!(tie.category, Category::Good);

        assert_eq!(combined_index(-1.0, 10.0), None);
    }
}
