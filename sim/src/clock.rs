//! Simulated time: a local (Europe/London) wall clock in seconds, mapped to UTC for the lake.
//!
//! Hospitals run on local time (lists start at 08:30, discharges peak mid-afternoon), while the
//! lake stores UTC. [`SimTime`] counts seconds of local wall-clock time from midnight of the
//! simulation's first day; [`Clock`] converts it to UTC through a per-hour offset table built
//! once. Local times in the spring-forward gap map to the instant of the change, so the mapping
//! never runs backwards and every "a ≤ b" the simulator guarantees holds in UTC too.

use chrono::{Duration, NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

/// Seconds of local wall-clock time since local midnight of the clock's first day.
pub type SimTime = i64;

/// Seconds in a minute, hour and day of wall-clock time.
pub const MINUTE: SimTime = 60;
/// One hour.
pub const HOUR: SimTime = 3600;
/// One day.
pub const DAY: SimTime = 86_400;

/// How one local hour maps to UTC.
#[derive(Debug, Clone, Copy)]
enum HourMap {
    /// UTC = local − offset seconds.
    Offset(i64),
    /// The hour does not exist locally (clocks went forward): every time in it maps to this
    /// UTC instant (seconds since the Unix epoch).
    Gap(i64),
}

/// Converts simulated local time to UTC over a fixed range of days.
#[derive(Debug, Clone)]
pub struct Clock {
    first_day: NaiveDate,
    tz: Tz,
    /// One entry per local hour of the range (plus slack after it).
    hours: Vec<HourMap>,
}

impl Clock {
    /// A clock for `days` days from `first_day` in the hospital's time zone, with room for
    /// events planned up to `slack_days` after the range.
    pub fn new(first_day: NaiveDate, days: u32, slack_days: u32, tz: Tz) -> Self {
        let total_hours = i64::from(days + slack_days) * 24;
        let start = first_day.and_hms_opt(0, 0, 0).expect("midnight exists");
        let hours = (0..total_hours)
            .map(|h| {
                let local = start + Duration::hours(h);
                match tz.from_local_datetime(&local) {
                    chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                        HourMap::Offset(i64::from(t.offset().fix().local_minus_utc()))
                    }
                    chrono::LocalResult::None => {
                        // UK gaps are one whole hour; the next local hour exists.
                        let after = tz
                            .from_local_datetime(&(local + Duration::hours(1)))
                            .earliest()
                            .expect("the hour after a gap exists");
                        HourMap::Gap(after.timestamp())
                    }
                }
            })
            .collect();
        Clock {
            first_day,
            tz,
            hours,
        }
    }

    /// The first local day.
    pub fn first_day(&self) -> NaiveDate {
        self.first_day
    }

    /// Local midnight starting day `day` (0 = first day).
    pub fn day_start(day: i64) -> SimTime {
        day * DAY
    }

    /// Which local day `t` falls on (0 = first day).
    pub fn day_of(t: SimTime) -> i64 {
        t.div_euclid(DAY)
    }

    /// The local calendar date of day index `day`.
    pub fn date(&self, day: i64) -> NaiveDate {
        self.first_day + Duration::days(day)
    }

    /// The local date-time of `t`.
    pub fn local(&self, t: SimTime) -> NaiveDateTime {
        self.first_day
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            + Duration::seconds(t)
    }

    /// Seconds since the Unix epoch (UTC) of local time `t`.
    pub fn unix_seconds(&self, t: SimTime) -> i64 {
        let hour = t.div_euclid(HOUR);
        let map = usize::try_from(hour)
            .ok()
            .and_then(|h| self.hours.get(h).copied());
        let local_unix = self.local_unix(t);
        match map {
            Some(HourMap::Offset(offset)) => local_unix - offset,
            Some(HourMap::Gap(instant)) => instant,
            // Outside the table (far past or future): ask the zone directly.
            None => self
                .tz
                .from_local_datetime(&self.local(t))
                .earliest()
                .map_or(local_unix, |u| u.timestamp()),
        }
    }

    /// Microseconds since the Unix epoch (UTC): the lake's timestamp unit.
    pub fn utc_micros(&self, t: SimTime) -> i64 {
        self.unix_seconds(t) * 1_000_000
    }

    /// The UTC calendar day of `t`, as days since 1970-01-01 (Arrow `Date32`).
    pub fn utc_date32(&self, t: SimTime) -> i32 {
        i32::try_from(self.unix_seconds(t).div_euclid(DAY)).unwrap_or(i32::MAX)
    }

    fn local_unix(&self, t: SimTime) -> i64 {
        i64::from(date32(self.first_day)) * DAY + t
    }

    /// The trust's wall clock at the instant `t` stands for. A local time the clocks skip in
    /// spring stands for the instant they jump, so it reads as that instant (02:00 BST).
    fn wall(&self, t: SimTime) -> chrono::DateTime<Tz> {
        chrono::DateTime::from_timestamp(self.unix_seconds(t), 0)
            .expect("simulated times are within chrono's range")
            .with_timezone(&self.tz)
    }

    /// HL7 v2 timestamp with offset: `YYYYMMDDHHMMSS+HHMM`.
    pub fn hl7(&self, t: SimTime) -> String {
        self.wall(t).format("%Y%m%d%H%M%S%z").to_string()
    }

    /// RFC 3339 with the local offset: `2025-03-30T09:15:00+01:00`.
    pub fn rfc3339(&self, t: SimTime) -> String {
        self.wall(t).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }

    /// Local `dd/mm/yyyy HH:MM:SS`, as trusts' CSV extracts write times (ECDS keeps seconds).
    pub fn uk_local(&self, t: SimTime) -> String {
        self.wall(t).format("%d/%m/%Y %H:%M:%S").to_string()
    }
}

/// Days since 1970-01-01 of a calendar date (Arrow `Date32`).
pub fn date32(date: NaiveDate) -> i32 {
    bright_engine::arrow::datatypes::Date32Type::from_naive_date(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Clock {
        // 2025-03-30: clocks go forward at 01:00 GMT; 2025-10-26: back at 01:00 GMT.
        Clock::new(
            NaiveDate::from_ymd_opt(2025, 3, 29).unwrap(),
            220,
            0,
            chrono_tz::Europe::London,
        )
    }

    #[test]
    fn winter_is_utc_and_summer_is_an_hour_ahead() {
        let c = clock();
        assert_eq!(c.rfc3339(9 * HOUR), "2025-03-29T09:00:00+00:00");
        assert_eq!(
            c.utc_micros(9 * HOUR) % (DAY * 1_000_000),
            9 * HOUR * 1_000_000
        );
        let summer = DAY * 2 + 9 * HOUR; // 2025-03-31 09:00 BST
        assert_eq!(c.rfc3339(summer), "2025-03-31T09:00:00+01:00");
        assert_eq!(c.hl7(summer), "20250331090000+0100");
        assert_eq!(c.unix_seconds(summer) % DAY, 8 * HOUR);
    }

    #[test]
    fn a_time_in_the_spring_gap_is_written_as_the_instant_it_stands_for() {
        let c = clock();
        // 01:11:09 on 30 March does not exist in London; it stands for 01:00 UTC, 02:00 BST.
        let gap = DAY + HOUR + 11 * 60 + 9;
        assert_eq!(c.unix_seconds(gap) % DAY, HOUR);
        assert_eq!(c.hl7(gap), "20250330020000+0100");
        assert_eq!(c.rfc3339(gap), "2025-03-30T02:00:00+01:00");
        assert_eq!(c.uk_local(gap), "30/03/2025 02:00:00");
    }

    #[test]
    fn mapping_never_runs_backwards_across_both_changes() {
        let c = clock();
        let mut last = i64::MIN;
        for t in (0..220 * DAY).step_by(300) {
            let u = c.unix_seconds(t);
            assert!(u >= last, "time ran backwards at {}", c.local(t));
            last = u;
        }
    }

    #[test]
    fn gap_times_map_to_the_change_instant() {
        let c = clock();
        let gap = DAY + HOUR + 30 * MINUTE; // 2025-03-30 01:30 local does not exist
        let change = c.unix_seconds(DAY + 2 * HOUR); // 02:00 BST = 01:00 UTC
        assert_eq!(c.unix_seconds(gap), change);
    }

    #[test]
    fn date32_matches_arrow() {
        assert_eq!(date32(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()), 0);
        assert_eq!(date32(NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()), 10_957);
    }
}
